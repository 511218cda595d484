"""String search parameters: case/accent-folded starts-with, `:contains` and `:exact`.

Stored as `{"v": folded, "x": exact}` (each bare or a list): `v` serves the default search (an
anchored regular expression, which MongoDB answers from an index on `v`) and `:contains`; `x`
serves `:exact`. HumanName and Address values index each of their parts, as the spec lists them:
family, given, prefix, suffix, text; line, city, district, state, postalCode, country, text.
"""

from __future__ import annotations

import re
from typing import Any

from fhir_server.search.text import fold
from fhir_server.search.types import any_of, packed

# HumanName and Address parts; the two types share no key but `text`, so one pass serves both.
_PARTS = ("family", "given", "prefix", "suffix", "text", "line", "city", "district", "state",
          "postalCode", "country")


def _strings(value: Any) -> list[str]:
    if type(value) is str:
        return [value]
    if type(value) is not dict:
        return []
    out: list[str] = []
    for key in _PARTS:
        part = value.get(key)
        if type(part) is str:
            out.append(part)
        elif type(part) is list:
            out += [p for p in part if type(p) is str]
    return out


def index(nodes: list[tuple[str | None, Any]], single: bool) -> dict | None:
    """`{"v": folded value(s), "x": exact value(s)}`."""
    exact: dict[str, None] = {}
    for _, value in nodes:
        for s in _strings(value):
            exact[s] = None
    if not exact:
        return None
    return {"v": packed({fold(s): None for s in exact}), "x": packed(exact)}


def parse(raw: str, modifier: str | None) -> str:
    """String query values are taken as given (after comma/escape handling)."""
    return raw


def match(field: str, single: bool, modifier: str | None, values: list[str]) -> dict:
    """Starts-with (default), `:contains` or `:exact` on any of `values`."""
    if modifier == "exact":
        return {f"{field}.x": values[0] if len(values) == 1 else {"$in": values}}
    if modifier == "contains":
        return any_of([{f"{field}.v": {"$regex": re.escape(fold(v))}} for v in values])
    return any_of([{f"{field}.v": {"$regex": "^" + re.escape(fold(v))}} for v in values])
