"""Reference search parameters: local `Type/id`, absolute and canonical URLs, identifiers.

Stored as `{"r": ..., "u": ..., "i": ...}` (each bare or a list, keys left out when empty):

- `r`: `Type/id` of relative references, of absolute ones whose base is this server's
  (`configure_local_bases`), and of a resource met in place (`Bundle.entry[0].resource`);
- `u`: the URL as written (history part dropped) of absolute references to other servers,
  URNs, canonicals (`url|version` and `url`) and uris;
- `i`: identifier tokens (`system|value`, `value`) of `Reference.identifier`, for `:identifier`.

Contained references (`#id`) are not indexed. A query `subject=123` becomes `r` in
`[T/123 for each target type T]`, `subject:Patient=123` becomes `r == Patient/123`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from fhir_server.search.errors import SearchError
from fhir_server.search.references import split_reference
from fhir_server.search.types import any_of, packed, split_escaped
from fhir_server.search.types import token as token_type

# Base URLs under which absolute references mean this server (set by `configure_local_bases`).
_local_bases: frozenset[str] = frozenset()


def configure_local_bases(bases: list[str]) -> None:
    """Declare the server's own base URLs, so absolute references to it index as `Type/id`."""
    global _local_bases
    _local_bases = frozenset(b.rstrip("/") for b in bases)


def local_bases() -> frozenset[str]:
    """The base URLs currently treated as this server."""
    return _local_bases


def _add_literal(literal: str, refs: dict, urls: dict) -> None:
    parts = split_reference(literal)
    if parts is not None:
        base, rtype, rid = parts
        if not base or base in _local_bases:
            refs[f"{rtype}/{rid}"] = None
        else:
            urls[f"{base}/{rtype}/{rid}"] = None
    elif not literal.startswith("#"):
        urls[literal] = None


def _add_canonical(url: str, urls: dict) -> None:
    urls[url] = None
    if "|" in url:
        urls[url.split("|", 1)[0]] = None


def index(nodes: list[tuple[str | None, Any]], single: bool) -> dict | None:
    """`{"r": local refs, "u": URLs, "i": identifier tokens}`."""
    refs: dict[str, None] = {}
    urls: dict[str, None] = {}
    identifiers: list[tuple[str, dict]] = []
    for _, value in nodes:
        if type(value) is str:
            _add_canonical(value, urls)
        elif type(value) is dict:
            literal = value.get("reference")
            if type(literal) is str:
                _add_literal(literal, refs, urls)
            elif "resourceType" in value and "id" in value:
                refs[f"{value['resourceType']}/{value['id']}"] = None
            identifier = value.get("identifier")
            if type(identifier) is dict:
                identifiers.append(("Identifier", identifier))
    out: dict[str, Any] = {}
    if refs:
        out["r"] = packed(refs)
    if urls:
        out["u"] = packed(urls)
    if identifiers and (tokens := token_type.index(identifiers, False)):
        out["i"] = tokens["t"]
    return out or None


class ReferenceValue(NamedTuple):
    """A parsed reference query value: local refs to try, or a URL, or an identifier token."""

    local: tuple[str, ...] = ()
    url: str | None = None
    identifier: token_type.TokenValue | None = None


def parse(raw: str, modifier: str | None, targets: tuple[str, ...] = ()) -> ReferenceValue:
    """`123`, `Patient/123`, `http://...`, `url|version`; `:Type` and `:identifier` modifiers."""
    if modifier == "identifier":
        return ReferenceValue(identifier=token_type.parse(raw, None))
    text = split_escaped(raw, "")[0]
    if not text:
        raise SearchError("", "empty reference")
    parts = split_reference(text)
    if parts is not None:
        base, rtype, rid = parts
        if modifier and modifier != rtype:
            raise SearchError("", f"{text!r} is not a {modifier}")
        if base and base not in _local_bases:
            return ReferenceValue(url=f"{base}/{rtype}/{rid}")
        return ReferenceValue(local=(f"{rtype}/{rid}",))
    if "/" in text or ":" in text:
        return ReferenceValue(url=text)
    types = (modifier,) if modifier else targets
    if not types:
        raise SearchError("", f"{text!r} needs a resource type")
    return ReferenceValue(local=tuple(f"{t}/{text}" for t in types))


def match(field: str, single: bool, modifier: str | None, values: list[ReferenceValue]) -> dict:
    """Any of `values` against the stored references at `field`."""
    local = [ref for v in values for ref in v.local]
    urls = [v.url for v in values if v.url]
    filters = []
    if local:
        filters.append({f"{field}.r": local[0] if len(local) == 1 else {"$in": local}})
    if urls:
        filters.append({f"{field}.u": urls[0] if len(urls) == 1 else {"$in": urls}})
    identifiers = [v.identifier for v in values if v.identifier]
    if identifiers:
        filters.append(token_type.match(field, False, None, identifiers, key="i"))
    return any_of(filters)
