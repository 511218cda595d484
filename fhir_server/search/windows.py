"""Sorted pages read through growing windows of the first sort key: narrow index ranges.

SecantusDB, the embedded database, reads a query's whole index range, then sorts it and applies
the limit, so a sorted page found by one query costs every match of the search
(`Patient?birthdate=ge1990&_sort=birthdate`: every patient born since 1990, for 20 of them).
MongoDB walks the index in order and stops at the limit; there the windows only add a few short
queries where the first one does not fill the page.

So where a branch's first sort key is range-able (`SortField.window`: epoch-ms dates, numbers,
instants), its field leads an index (or is read through one that does, `SortField.via`: each
window on a date's end `e` also ranges over its start `s`, which lies less than a year before)
and no other indexed field is constrained (that index would serve the query better), and the
branch's own condition on the key bounds where the page starts (a range such as `ge1990`, the
keyset boundary of a next page, or its ties: one window `[v, v]`), the page is read window by
window in sort order: `[start, start + w)`, then `[start + w, start + w + w')`... Each window is
one query with the branch's filter, the page's sort and the remaining limit; the width grows
from what the last window found (2 x wanted / found, within x2 to x16), so an empty tail costs
about ten queries and a dense range is never read much beyond the page. The last window is the
branch's own end bound, or open-ended once the windows pass 2^62 (the open ends of stored date
ranges).

Windows are half-open ranges of the *sort value*, so a tie never straddles two windows and their
concatenation is the sort order. A multi-valued key sorts by its lowest value ascending and its
highest descending, but a range finds a document with *some* value in it: on such a key each
window also checks in Python that no value sorts before the window (the sort value lies in it),
and the branch's own condition on the key, whose parts may hold on different values, is
checked rather than intersected. There the start bound can only come from such an "every value"
condition (`$not: {$lte: v}`, the keyset boundary), as "some value >= v" says nothing of the lowest.

Documents lacking the key sort first ascending (last descending) and match no range: a branch that
can hold them has no start bound on the key and is read in one query (the keyset boundary gives
them a branch of their own, an index lookup of null on a single-valued key).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_server.search.expand import Branch
from fhir_server.search.keyset import SortField
from fhir_server.storage.windows import growth

Json = dict[str, Any]
Value = int | float | datetime
Bound = tuple[str, Value]
"""An operator and its value: `("$gte", 5)`."""

FAR = 2 ** 62
"""Numbers beyond this end the windows with an open-ended one (stored open date ends are +-2^62)."""
_COMPLEMENT = {"$gt": "$lte", "$gte": "$lt", "$lt": "$gte", "$lte": "$gt"}


@dataclass(frozen=True)
class Window:
    """One window: a branch reading the documents whose sort value lies in it."""

    branch: Branch
    end: Bound | None
    """None: open-ended (the last window)."""
    width: float | timedelta
    last: bool


@dataclass(frozen=True)
class Gallop:
    """The windows of one branch, produced one at a time from what the previous one found."""

    key: str
    descending: bool
    single: bool
    rest: Json
    """The branch's filter without its condition on the key."""
    checks: list[Json] = field(default_factory=list)
    """Checks every window keeps: the branch's own, and its condition on a multi-valued key."""
    residuals: list[tuple[str, re.Pattern]] = field(default_factory=list)
    stop: Bound | None = None
    """The branch's own end bound on the key, if any: the last window ends there."""
    via: tuple[str, int] | None = None
    """`SortField.via`: the indexed field each window is read through, and its reach."""

    def after(self, window: Window, found: int, wanted: int) -> Window | None:
        """The window following `window`, which found `found` documents while `wanted` more are needed."""
        if window.last:
            return None
        op, value = window.end  # type: ignore[misc]  # only the last window is open-ended
        return self.window((_COMPLEMENT[op], value), window.width * growth(found, wanted))

    def window(self, begin: Bound, width: float | timedelta) -> Window:
        """The window from `begin`, `width` wide, cut at the branch's own end bound."""
        end = _shift(begin[1], -width if self.descending else width)
        bound: Bound | None
        if self.stop is not None and (end is None or _passes(end, self.stop[1], self.descending)):
            bound, last = self.stop, True
        elif end is None:
            bound, last = None, True
        else:
            bound, last = ("$gte" if self.descending else "$lt", end), False
        condition = {begin[0]: begin[1], **({bound[0]: bound[1]} if bound else {})}
        checks = list(self.checks)
        if not self.single:  # the sort value (lowest or highest value) lies in this window
            checks.append({self.key: {"$not": {_COMPLEMENT[begin[0]]: begin[1]}}})
        found = {self.key: condition}
        if self.via is not None:  # first: SecantusDB reads the first indexed field's range
            found = {self.via[0]: _reach(condition, self.via[1]), **found}
        return Window(Branch({**found, **self.rest}, list(self.residuals), checks), bound, width, last)


def _reach(condition: Json, distance: int) -> Json:
    """The range of the `via` field holding the documents whose key meets the range `condition`:
    no more than `distance` below the key, never above it."""
    return {("$gte" if op in ("$gt", "$gte") else op): (value - distance if op in ("$gt", "$gte") else value)
            for op, value in condition.items()}


def _shift(value: Value, width: float | timedelta) -> Value | None:
    """`value + width`, or None past the range windows close (then the window is open-ended)."""
    try:
        moved = value + width  # type: ignore[operator]
    except OverflowError:
        return None
    if isinstance(moved, datetime):
        return moved
    return moved if abs(moved) < FAR else None


def _passes(value: Value, stop: Value, descending: bool) -> bool:
    return value <= stop if descending else value >= stop  # type: ignore[operator]


def gallop(part: Branch, sort_field: SortField, indexed: frozenset[str]) -> tuple[Gallop, Window] | None:
    """The windows to read `part` by, and the first of them; None when one query is the way."""
    key, width, via = sort_field.path, sort_field.window, sort_field.via
    condition = _as_operators(part.filter.get(key))
    served = key in indexed or (via is not None and via[0] in indexed)
    if width is None or not served or condition is None:
        return None
    fields = {key, via[0]} if via else {key}
    others = set(part.filter) - fields - {"$and"}
    if others & indexed or _pinned(part.filter.get("_id")) or any(
            f in clause for clause in part.filter.get("$and", ()) for f in fields):
        return None
    bounds = _bounds(condition, sort_field)
    if bounds is None:
        return None
    begin, stop = bounds
    if not _fits(begin[1], width) or (stop is not None and not _fits(stop[1], width)):
        return None
    begin, stop = (begin[0], _aware(begin[1])), stop and (stop[0], _aware(stop[1]))
    rest = {k: v for k, v in part.filter.items() if k not in fields}
    checks = list(part.checks) if sort_field.single else [*part.checks, {key: condition}]
    if via and via[0] in part.filter:  # the branch's own condition on the indexed field
        checks.append({via[0]: part.filter[via[0]]})
    plan = Gallop(key, sort_field.descending, sort_field.single, rest, checks, list(part.residuals), stop, via)
    return plan, plan.window(begin, width)


def _as_operators(condition: Any) -> Json | None:
    """A condition as operators: a bare value is `$eq`; None when there is none."""
    if condition is None or isinstance(condition, dict):
        return condition or None
    return {"$eq": condition}


def _pinned(condition: Any) -> bool:
    """Whether an `_id` condition names ids (`_has`, an `_id` search: few documents, found by id)
    rather than ranging over them (the keyset boundary's ties)."""
    return condition is not None and not (isinstance(condition, dict) and set(condition) <= set(_COMPLEMENT))


def _bounds(condition: Json, sort_field: SortField) -> tuple[Bound, Bound | None] | None:
    """Where the windows start and (maybe) must stop, from the branch's condition on the key.

    The start bounds the *sort value*: any bound on a single-valued key, and on a multi-valued
    one only a bound on every value (`$not: {$lte: v}`: the lowest value is above `v`). The stop
    may bound just some value: "a value below v" puts the lowest below v too. None when the
    condition holds anything else on a single-valued key, or gives no start.
    """
    starts, stops = ("$lt", "$lte"), ("$gt", "$gte")
    if not sort_field.descending:
        starts, stops = stops, starts
    begin: list[Bound] = []
    stop: list[Bound] = []
    for op, value in condition.items():
        if op in stops:
            stop.append((op, value))
        elif sort_field.single and op in starts:
            begin.append((op, value))
        elif sort_field.single and op == "$eq":  # a tie of the keyset boundary: one window, [v, v]
            if value is None:  # the documents lacking the key: no range holds them
                return None
            begin.append((starts[1], value))
            stop.append((stops[1], value))
        elif not sort_field.single and op == "$not" and isinstance(value, dict) and len(value) == 1:
            (inner, bound), = value.items()
            if inner in stops:  # every value is beyond `bound`: so is the sort value
                begin.append((_COMPLEMENT[inner], bound))
        elif sort_field.single and not (op == "$exists" and value is True):
            return None
    if not begin:
        return None
    return _tightest(begin, sort_field.descending), _tightest(stop, not sort_field.descending) if stop else None


def _tightest(bounds: list[Bound], descending: bool) -> Bound:
    """The most restrictive of several start (or stop) bounds, ascending (or descending) order."""
    strict = frozenset({"$gt", "$lt"})
    return max(bounds, key=lambda b: (-_order(b[1]) if descending else _order(b[1]), b[0] in strict))


def _order(value: Value) -> float:
    return _aware(value).timestamp() if isinstance(value, datetime) else value  # type: ignore[return-value]


def _fits(value: Any, width: float | timedelta) -> bool:
    """Whether windows of `width` can be laid from `value` (a finite number or an instant)."""
    if isinstance(width, timedelta):
        return isinstance(value, datetime)
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _aware(value: Value) -> Value:
    """Instants as aware UTC: the compiler writes naive ones (BSON dates carry no zone), cursors aware."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value

