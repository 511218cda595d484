"""Type and system history pages read through windows of time: narrow index ranges.

SecantusDB, the embedded database, reads a query's whole index range before it sorts and applies
the limit, so `Patient/_history?_count=10` read as one query costs every version of every
Patient (seconds at 100,000). Read instead window by window of `ts` from where the page starts
(just past the previous page's last version, else now), each window one query on the (`t`,
`ts`) or (`ts`) index with the page's order and the remaining limit, its width grown from what
the last one found (`growth`), until the page is full or a window reaches the page's end
(`_since` or 2000 backwards, now forwards), where the last window is open-ended.
Windows are half-open in `ts`, so versions sharing a timestamp never straddle two; the versions
sharing the previous page's last timestamp are read first, by `_id`. The queries stay flat
(`{t, ts}`): any `$and`, `$or` or `$not` beside them makes SecantusDB read the whole range again,
so `_at`, which needs a condition on the versions' ends, is one query. And they bound `ts` only
with `$gt` and `$lt`: on an index with fields after the ranged one, such as (`t`, `ts`, `_id`),
SecantusDB 0.7 drops the entries equal to an inclusive bound at the end of the range in index
order (`$gte` on the descending `ts`). Stored times are whole milliseconds, so `>= x` is
`> x - 1 ms` for a whole-millisecond `x`. On MongoDB, which walks
the index in order and stops at the limit, the windows only add a few short queries where the
first does not fill the page.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from fhir_server.fhir.primitives import now

Json = dict[str, Any]

FIRST_WIDTH = timedelta(seconds=1)
MILLISECOND = timedelta(milliseconds=1)
HORIZON = datetime(2000, 1, 1, tzinfo=UTC)
"""Before any version this server stamped (`ts` is its own clock): backwards, the window that
reaches it is the last, open-ended one."""
MIN_GROWTH, MAX_GROWTH = 2, 16


def growth(found: int, wanted: int) -> int:
    """How many times wider the next window is than one that found `found`, `wanted` more being needed."""
    return min(MAX_GROWTH, max(MIN_GROWTH, math.ceil(2 * wanted / max(found, 1))))


async def history_page(collection: AsyncCollection, fixed: Json, limit: int, *, descending: bool,
                       anchor: tuple[datetime, str] | None, since: datetime | None) -> list[Json]:
    """Up to `limit` entries matching `fixed` (`{}` or `{"t": type}`) in (`ts`, `_id`) order, from
    just past `anchor` (the (ts, _id) of a version already shown), no older than `since`.
    Ascending pages (`previous` links) always have an anchor."""
    order = -1 if descending else 1
    sort = [("ts", order), ("_id", order)]
    docs: list[Json] = []
    edge = None
    if anchor:
        edge, last_id = anchor
        ties = {**fixed, "ts": edge, "_id": {"$lt" if descending else "$gt": last_id}}
        docs = await collection.find(ties).sort(sort).limit(limit).to_list(None)
    moment, width = now(), FIRST_WIDTH
    while len(docs) < limit:
        if descending:
            condition, edge, last = _older(edge, width, since, moment)
        else:
            condition, edge, last = _newer(edge, width, moment)  # type: ignore[arg-type]
        query = {**fixed, "ts": condition} if condition else fixed
        found = await collection.find(query).sort(sort).limit(limit - len(docs)).to_list(None)
        docs += found
        if last:
            break
        width *= growth(len(found), limit - len(docs))
    return docs


def _older(edge: datetime | None, width: timedelta, since: datetime | None, moment: datetime
           ) -> tuple[Json, datetime, bool]:
    """The window `[edge - width, edge)` (open above at first, when `edge` is None), its lower end, and
    whether it is the last: it reaches `since` or the horizon."""
    upper = {"$lt": edge} if edge else {}
    low = (edge or moment) - width
    if low <= (since or HORIZON):
        return {**upper, **({"$gt": _before(since)} if since else {})}, low, True
    return {**upper, "$gt": _before(low)}, low, False


def _newer(edge: datetime, width: timedelta, moment: datetime) -> tuple[Json, datetime, bool]:
    """The window `(edge, edge + width]`, its upper end, and whether it is the last: it passes now
    (then open-ended)."""
    lower = {"$gt": edge}
    high = edge + width
    if high >= moment:
        return lower, high, True
    return {**lower, "$lt": high + MILLISECOND}, high, False


def _before(moment: datetime) -> datetime:
    """The last whole millisecond before `moment` (rounded up to one): `ts > it` is `ts >= moment`."""
    whole = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return whole - MILLISECOND if whole == moment else whole
