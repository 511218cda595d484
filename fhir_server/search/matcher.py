"""Compiled search filters evaluated in Python, on a resource that need not be stored.

`matches(filter, stored_form(type, resource))` answers what `find(filter)` would answer for the
document the store keeps for `resource` (`{_id, ts, sp}`: the columns and the search index the
compiled filters address). The access checks use it on writes: a v2 scope restriction such as
`?category=laboratory` is compiled once by the search engine and then judged both by the database
(reads, searches) and here (the version about to be written, the version it replaces), so the
two cannot disagree on what a restriction means.

Only the MongoDB query operators the search compiler produces are understood, with MongoDB's
semantics (a field inside arrays is looked up in every element; an operator holds if any of the
values found satisfies it; `$nin`, `$not` and equality with null match a missing field;
comparisons only between values of one kind). Any other operator raises `UnsupportedFilter`, so a
caller can refuse rather than guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fhir_server.fhir.primitives import date_time_range
from fhir_server.search.extract import extract

Json = dict[str, Any]


class UnsupportedFilter(ValueError):
    """The filter uses an operator this evaluator does not implement."""


def stored_form(resource_type: str, resource: Json, index: Json | None = None) -> Json:
    """The part of `resource`'s stored document that compiled filters read: `_id`, `ts`, `sp`
    (`index`, when the store has already extracted it)."""
    last_updated = date_time_range((resource.get("meta") or {}).get("lastUpdated") or "")
    document: Json = {"_id": resource.get("id"),
                      "sp": extract(resource_type, resource) if index is None else index}
    if last_updated is not None:
        document["ts"] = last_updated[0]
    return document


def matches(query: Json, document: Json) -> bool:
    """Whether `document` satisfies the MongoDB filter `query`."""
    for key, condition in query.items():
        if key == "$and":
            held = all(matches(part, document) for part in condition)
        elif key == "$or":
            held = any(matches(part, document) for part in condition)
        elif key.startswith("$"):
            raise UnsupportedFilter(key)
        else:
            held = _field_matches(_lookup(document, key.split(".")), condition)
        if not held:
            return False
    return True


def _lookup(value: Any, parts: list[str]) -> list[Any]:
    """The values at a dotted path, looking through arrays on the way (MongoDB's implicit traversal)."""
    if not parts:
        return [value]
    if isinstance(value, dict):
        return _lookup(value[parts[0]], parts[1:]) if parts[0] in value else []
    if isinstance(value, list):
        return [found for item in value if isinstance(item, dict) for found in _lookup(item, parts)]
    return []


def _is_operators(condition: Any) -> bool:
    return isinstance(condition, dict) and bool(condition) and all(k.startswith("$") for k in condition)


def _field_matches(found: list[Any], condition: Any) -> bool:
    if not _is_operators(condition):
        return _operator("$eq", condition, found)
    return all(_operator(op, argument, found) for op, argument in condition.items())


def _candidates(found: list[Any]) -> list[Any]:
    """What operators compare with: each value found and, for an array, each of its elements."""
    out = []
    for value in found:
        out.append(value)
        if isinstance(value, list):
            out.extend(value)
    return out


def _operator(op: str, argument: Any, found: list[Any]) -> bool:
    match op:
        case "$eq":
            if argument is None and not found:  # null equality matches a missing field
                return True
            return any(_equal(c, argument) for c in _candidates(found))
        case "$in":
            return any(_equal(c, a) for c in _candidates(found) for a in argument)
        case "$nin":
            return not _operator("$in", argument, found)
        case "$gt" | "$gte" | "$lt" | "$lte":
            return any(_compare(op, c, argument) for c in _candidates(found))
        case "$exists":
            return bool(found) == bool(argument)
        case "$regex":
            return any(isinstance(c, str) and re.search(argument, c) is not None for c in _candidates(found))
        case "$not":
            return not _field_matches(found, argument)
        case "$elemMatch":
            return any(_element_matches(e, argument) for v in found if isinstance(v, list) for e in v)
    raise UnsupportedFilter(op)


def _element_matches(element: Any, condition: Json) -> bool:
    if _is_operators(condition):
        return _field_matches([element], condition)
    return isinstance(element, dict) and matches(condition, element)


def _kind(value: Any) -> str:
    """BSON's comparison classes: numbers compare with numbers only, booleans are not numbers."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """Datetimes as naive UTC: BSON dates carry no zone, the compiler writes naive and aware ones."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and _plain(a) == _plain(b)


def _compare(op: str, value: Any, bound: Any) -> bool:
    if _kind(value) != _kind(bound) or isinstance(value, dict | list | bool) or value is None:
        return False
    value, bound = _plain(value), _plain(bound)
    match op:
        case "$gt":
            return value > bound
        case "$gte":
            return value >= bound
        case "$lt":
            return value < bound
    return value <= bound
