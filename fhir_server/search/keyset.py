"""Keyset paging over a search's sort order: positions, "after"/"before" filters, merge keys.

A page boundary is the *position* of an item: its sort-key values, its id and its type. The
next page holds the items strictly after the last one shown, the previous page those strictly
before the first one, so writes between two requests never shift a page (no skip drift).

MongoDB sorts a multi-valued field ascending by its lowest and descending by its highest
value, and a missing one lowest. The filters below reproduce exactly that order with array
semantics: "lowest value > v" is "no value <= v", "highest value < v" is "no value >= v", and
"lowest value == v" is "some value == v and none < v". Single-valued keys get the plain range
operators, which indexes serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import total_ordering
from typing import Any

Json = dict[str, Any]
_NOTHING: Json = {"_id": {"$in": []}}
_ALL: Json = {}


@dataclass(frozen=True, slots=True)
class SortField:
    """One key of the sort order: MongoDB path, direction and how its values are stored."""

    path: str
    descending: bool
    single: bool
    """At most one value per document (else an array: min/max semantics)."""
    always: bool = False
    """Present in every document (`_id`, `ts`)."""
    window: float | timedelta | None = None
    """Range-able values (numbers, epoch-ms dates, instants): the first width `windows` reads a page by."""
    via: tuple[str, int] | None = None
    """A field of the same values no more than a distance below this one and never above it
    (a date range's start, within a year of its end): `windows` reads through its index."""


def _values(doc: Any, parts: list[str]) -> list[Any]:
    if isinstance(doc, list):
        return [v for item in doc for v in _values(item, parts)]
    if not parts:
        return [] if doc is None else [doc]
    if not isinstance(doc, dict):
        return []
    return _values(doc.get(parts[0]), parts[1:])


def sort_value(doc: Json, field: SortField) -> Any:
    """The value MongoDB sorts `doc` by on `field`: lowest (ascending) or highest (descending)."""
    values = _values(doc, field.path.split("."))
    if not values:
        return None
    return max(values) if field.descending else min(values)


def position(doc: Json, resource_type: str, fields: list[SortField]) -> Json:
    """The JSON-safe boundary position of a stored document."""
    return {"k": [_encode(sort_value(doc, f)) for f in fields], "t": resource_type}


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$ts": int(value.timestamp() * 1000)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$ts" in value:
        return datetime.fromtimestamp(value["$ts"] / 1000, UTC)
    return value


def _missing(field: SortField) -> Json:
    """Documents without a value for `field`.

    On a single-valued key, equality with null: the same documents (no value is ever stored as
    null, and the key sits in one sub-document, not in several of which one could lack it), and
    an index lookup where SecantusDB scans the collection for `$exists: false`. Through `via`
    where there is one: a date range lacks its end exactly when it lacks its start, and the start
    is the indexed one.
    """
    if not field.single:
        return {field.path: {"$exists": False}}
    return {(field.via[0] if field.via else field.path): None}


def _after(field: SortField, v: Any) -> Json:
    """Documents whose key sorts strictly after `v` in `field`'s direction."""
    f = field.path
    if v is None:  # missing sorts lowest
        return _NOTHING if field.descending else {f: {"$exists": True}}
    if field.single:
        if field.descending:
            return {f: {"$lt": v}} if field.always else {"$or": [{f: {"$lt": v}}, _missing(field)]}
        return {f: {"$gt": v}}
    if field.descending:
        return {f: {"$not": {"$gte": v}}}
    return {"$and": [{f: {"$exists": True}}, {f: {"$not": {"$lte": v}}}]}


def _before(field: SortField, v: Any) -> Json:
    """Documents whose key sorts strictly before `v` in `field`'s direction."""
    f = field.path
    if v is None:
        return {f: {"$exists": True}} if field.descending else _NOTHING
    if field.descending:
        return {f: {"$gt": v}}
    if field.always:
        return {f: {"$lt": v}}
    return {"$or": [{f: {"$lt": v}}, _missing(field)]}


def _equal(field: SortField, v: Any) -> Json:
    f = field.path
    if v is None:
        return _missing(field)
    if field.single:
        return {f: v}
    bound = "$gt" if field.descending else "$lt"
    return {"$and": [{f: v}, {f: {"$not": {bound: v}}}]}


def beyond(fields: list[SortField], pos: Json, resource_type: str, backwards: bool) -> Json:
    """Documents of `resource_type` strictly after (or, `backwards`, before) position `pos`.

    The last field is the id; positions of other types are ordered by type name after the id,
    which is how a system search merges several collections.
    """
    values = [_decode(v) for v in pos["k"]]
    same_id_counts = (resource_type < pos["t"]) if backwards else (resource_type > pos["t"])
    branches: list[Json] = []
    for i, (field, v) in enumerate(zip(fields, values, strict=True)):
        prefix = [_equal(f, w) for f, w in zip(fields[:i], values[:i], strict=True)]
        strict = _before(field, v) if backwards else _after(field, v)
        branches.append(_conjunction([*prefix, strict]))
        if i == len(fields) - 1 and same_id_counts:
            branches.append(_conjunction([*prefix, _equal(field, v)]))
    return {"$or": branches} if len(branches) > 1 else branches[0]


def _conjunction(filters: list[Json]) -> Json:
    filters = [f for f in filters if f != _ALL]
    if not filters:
        return _ALL
    return filters[0] if len(filters) == 1 else {"$and": filters}


@total_ordering
class _Key:
    """One sort value in Python, ordered like MongoDB orders it (missing lowest), maybe reversed."""

    __slots__ = ("descending", "value")

    def __init__(self, value: Any, descending: bool) -> None:
        self.value, self.descending = value, descending

    def _lt(self, other: _Key) -> bool:
        if self.value is None or other.value is None:
            return self.value is None and other.value is not None
        return self.value < other.value

    def __lt__(self, other: _Key) -> bool:
        return other._lt(self) if self.descending else self._lt(other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self.value == other.value


def merge_key(doc: Json, resource_type: str, fields: list[SortField]) -> tuple:
    """A Python sort key giving documents of several types the order `beyond` pages through."""
    return (*(_Key(sort_value(doc, f), f.descending) for f in fields), resource_type)
