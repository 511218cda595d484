"""URI search parameters: exact match, `:below` (prefix) and `:above` (any leading part).

Stored as `{"v": uri}` (bare or a list), exactly as written. `:below` is an anchored regular
expression, answered from an index on `v`; `:above=http://a/b/c` becomes `v` in
`[http://a/b/c, http://a/b, http://a]`. A canonical `url|version` also indexes the bare `url`.
"""

from __future__ import annotations

import re
from typing import Any

from fhir_server.search.types import any_of, packed, split_escaped


def index(nodes: list[tuple[str | None, Any]], single: bool) -> dict | None:
    """`{"v": uri(s)}`."""
    values: dict[str, None] = {}
    for _, value in nodes:
        if type(value) is str:
            values[value] = None
            if "|" in value:
                values[value.split("|", 1)[0]] = None
    return {"v": packed(values)} if values else None


def parse(raw: str, modifier: str | None) -> str:
    """A URI query value, unescaped."""
    return split_escaped(raw, "")[0]


def _above(uri: str) -> list[str]:
    scheme_end = uri.find("://")
    floor = scheme_end + 3 if scheme_end >= 0 else 0
    out = [uri]
    while (cut := uri.rfind("/", floor)) > floor:
        uri = uri[:cut]
        out.append(uri)
    return out


def match(field: str, single: bool, modifier: str | None, values: list[str]) -> dict:
    """Any of `values`, exact or under `:above`/`:below`."""
    if modifier == "below":
        return any_of([{f"{field}.v": {"$regex": "^" + re.escape(v)}} for v in values])
    candidates = [c for v in values for c in (_above(v) if modifier == "above" else [v])]
    return {f"{field}.v": candidates[0] if len(candidates) == 1 else {"$in": candidates}}
