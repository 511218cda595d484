"""Date search parameters: values as UTC millisecond ranges, prefixes as range relations.

Every indexed value becomes an inclusive range `{"s": first_ms, "e": last_ms}` of epoch
milliseconds: a partial date covers its whole year/month/day, a dateTime its precision (a
second, or a millisecond), a Period its start..end (an open end stretches to `LOW`/`HIGH`),
a Timing the outer limits of its events and bounds (as the spec says). A dateTime without a
timezone is taken as UTC.

Query values are ranges too (`2013-01` is all of January 2013) and the prefixes follow the
R4 definitions over ranges: eq = search range contains the target, gt = target ends after the
search range, sa = target starts after it, ap = ranges overlap once the search range is widened
by 10% of its distance from now, and so on (`_CONDITIONS`).
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from fhir_server.search.errors import SearchError
from fhir_server.search.registry import PREFIXES
from fhir_server.search.types import any_of, scoped

LOW = -(2**62)
HIGH = 2**62
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86_400_000
_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?")


def _day_ms(y: int, m: int, d: int) -> int:
    return (date(y, m, d).toordinal() - _EPOCH_ORDINAL) * _DAY


def parse_range(text: str) -> tuple[int, int]:
    """Inclusive `(first_ms, last_ms)` covered by a FHIR date, dateTime or instant string."""
    m = _DATE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a date: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    y = int(year)
    if month is None:
        return _day_ms(y, 1, 1), _day_ms(y + 1, 1, 1) - 1 if y < 9999 else HIGH
    mo = int(month)
    if day is None:
        start = _day_ms(y, mo, 1)
        end = _day_ms(y + mo // 12, mo % 12 + 1, 1) if (y, mo) != (9999, 12) else HIGH
        return start, end - 1
    start = _day_ms(y, mo, int(day))
    if hour is None:
        return start, start + _DAY - 1
    h, mi = int(hour), int(minute)
    if h > 23 or mi > 59:
        raise ValueError(f"not a time: {text!r}")
    start += h * 3_600_000 + mi * 60_000
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        start -= sign * (int(zone[1:3]) * 3_600_000 + int(zone[4:6]) * 60_000)
    if second is None:
        return start, start + 59_999
    s = int(second)
    if s > 60:
        raise ValueError(f"not a time: {text!r}")
    start += s * 1000
    if fraction is None:
        return start, start + 999
    start += int((fraction + "00")[:3])
    return start, start + (10 ** max(0, 3 - len(fraction))) - 1


def _period(value: dict) -> tuple[int, int] | None:
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return None
    lo = parse_range(start)[0] if start else LOW
    hi = parse_range(end)[1] if end else HIGH
    return lo, hi


def _timing(value: dict) -> tuple[int, int] | None:
    ranges = [parse_range(e) for e in value.get("event", ()) if isinstance(e, str)]
    bounds = (value.get("repeat") or {}).get("boundsPeriod")
    if bounds and (period := _period(bounds)):
        ranges.append(period)
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def _value_range(fhir_type: str | None, value: Any) -> tuple[int, int] | None:
    if type(value) is str:
        return parse_range(value)
    if type(value) is not dict:
        return None
    if fhir_type == "Period" or (fhir_type is None and ("start" in value or "end" in value)):
        return _period(value)
    if fhir_type == "Timing" or (fhir_type is None and ("event" in value or "repeat" in value)):
        return _timing(value)
    return None


def index(nodes: list[tuple[str | None, Any]], single: bool) -> Any:
    """`{"s", "e"}` (single-valued parameter) or a list of them."""
    ranges = {}
    for fhir_type, value in nodes:
        try:
            r = _value_range(fhir_type, value)
        except ValueError:  # an unparseable date indexes nothing rather than failing the write
            continue
        if r is not None:
            ranges[r] = None
    if not ranges:
        return None
    if single:
        s, e = next(iter(ranges))
        return {"s": s, "e": e}
    return [{"s": s, "e": e} for s, e in ranges]


class DateValue(NamedTuple):
    """One parsed query value: a prefix and the inclusive range the value covers."""

    prefix: str
    lo: int
    hi: int


def split_prefix(raw: str, prefixes: frozenset[str]) -> tuple[str, str]:
    """`("ge", "2013")` for `ge2013`; a value without a known prefix gets `eq`."""
    if len(raw) > 2 and raw[:2] in prefixes and not raw[:2].isdigit():
        return raw[:2], raw[2:]
    return "eq", raw


def parse(raw: str, modifier: str | None) -> DateValue:
    """A prefixed date query value (`ge2013-01-14`, `2013-01-14T10:00:00+01:00`)."""
    prefix, text = split_prefix(raw, PREFIXES)
    # An unencoded `+` in a query string arrives as a space.
    text = text.replace(" ", "+")
    try:
        lo, hi = parse_range(text)
    except ValueError as e:
        raise SearchError("", f"invalid date {raw!r}") from e
    return DateValue(prefix, lo, hi)


def _approximate(lo: int, hi: int) -> tuple[int, int]:
    now = int(time.time() * 1000)
    widen = int(0.1 * abs(now - (lo + hi) // 2))
    return lo - widen, hi + widen


def _merge(*conditions: tuple[str, str, Any]) -> dict:
    out: dict[str, dict] = {}
    for field, op, value in conditions:
        out.setdefault(field, {})[op] = value
    return out


def conditions(s: str, e: str, value: DateValue, convert: Any = None, aligned: bool = False) -> dict:
    """The filter relating target range fields `s`..`e` to a query value under its prefix.

    `aligned` says every stored range is a calendar period (see `_straddling`), which turns the
    conditions on `e` of `gt`/`ge`/`le` into ranges on `s` plus a few equalities: index lookups.
    """
    qs, qe = value.lo, value.hi
    if convert is not None:
        qs, qe = convert(qs), convert(qe)
    # s <= e holds for every stored range: the bound on `s` changes no match but bounds the scan.
    inside = _merge((s, "$gte", qs), (s, "$lte", qe), (e, "$lte", qe))
    match value.prefix:
        case "eq":
            return inside
        case "ne":
            return {"$or": [{s: {"$lt": qs}}, {e: {"$gt": qe}}]}
        case "gt":
            return _after(s, e, qe + 1, qe) if aligned else {e: {"$gt": qe}}
        case "lt":
            return {s: {"$lt": qs}}
        case "ge":
            return _after(s, e, qs, qe) if aligned else {"$or": [{e: {"$gt": qe}}, inside]}
        case "le":
            if aligned and not [c for c in _straddling(qe + 1) if c >= qs]:
                # No period starting within the search range reaches past it: le is "starts by qe".
                return {s: {"$lte": qe}}
            return {"$or": [{s: {"$lt": qs}}, inside]}
        case "sa":
            return {s: {"$gt": qe}}
        case "eb":
            return {e: {"$lt": qs}}
        case _:  # ap
            lo, hi = _approximate(value.lo, value.hi)
            if convert is not None:
                lo, hi = convert(lo), convert(hi)
            return _merge((s, "$lte", hi), (e, "$gte", lo))


def overlapping(field: str, single: bool, lo: int, hi: int) -> dict:
    """The stored range(s) at `field` of which one shares at least a millisecond with `lo`..`hi`.

    Not a search prefix: an operation naming a period (`$everything`'s start and end) wants
    whatever took place in it at least partly, which no prefix says alone (`ge` misses a range
    that starts before the period and ends inside its first day).
    """
    return scoped(field, single, [(lo, hi)],
                  lambda prefix, period: _merge((prefix + "s", "$lte", period[1]), (prefix + "e", "$gte", period[0])))


def _after(s: str, e: str, start: int, qe: int) -> dict:
    """Aligned ranges starting at or after `start` (<= `qe` + 1), or ending after `qe`.

    A range ending after `qe` starts after it or straddles `qe + 1`, and a straddling one starts
    at one of the few instants `_straddling` lists: `gt` (`start` = `qe + 1`) and `ge` (`start`
    = the search range's start, which adds the ranges within it) become a range on `s` and
    equalities on `s`, all of which an index serves.
    """
    straddling = [{s: c, e: {"$gt": qe}} for c in sorted(_straddling(qe + 1)) if c < start]
    return {"$or": [{s: {"$gte": start}}, *straddling]} if straddling else {s: {"$gte": start}}


# Every date, dateTime or instant stands for a calendar period in UTC: a year, a month, a day
# (partial dates), a minute, a second, or 100/10/1 ms (a time with 0-3 fraction digits; zone
# offsets are whole minutes). Periods of one kind never overlap, so the periods holding an
# instant `b` but starting before it are at most one per kind, and their starts are known.
_MINUTE, _SECOND = 60_000, 1000


def _straddling(b: int) -> set[int]:
    """The starts of the calendar periods that contain instant `b` (epoch ms) and start before it."""
    if b < _MIN_MS:
        return set()
    # Past the year 9999 the clamped instant still names that year's periods, which end at HIGH.
    moment = ms_to_datetime(b)
    starts = {_day_ms(moment.year, 1, 1), _day_ms(moment.year, moment.month, 1),
              *(b - b % unit for unit in (_DAY, _MINUTE, _SECOND, 100, 10))}
    return {c for c in starts if c < b}


# Element types whose values are all calendar periods (`_straddling`).
POINT_TYPES = frozenset({"date", "dateTime", "instant"})


def match(field: str, single: bool, modifier: str | None, values: list[DateValue], aligned: bool = False
          ) -> dict:
    """Any of `values` against the range(s) stored at `field` (calendar periods, if `aligned`)."""
    return scoped(field, single, values, lambda prefix, v: conditions(prefix + "s", prefix + "e", v, aligned=aligned))


_EPOCH = datetime(1970, 1, 1)
_MIN_MS = (datetime(1, 1, 1) - _EPOCH) // timedelta(milliseconds=1)
_MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000) - _EPOCH) // timedelta(milliseconds=1)


def ms_to_datetime(ms: int) -> datetime:
    """A naive UTC datetime for epoch milliseconds, clamped to the years 1..9999."""
    return _EPOCH + timedelta(milliseconds=max(_MIN_MS, min(ms, _MAX_MS)))


def match_instant_column(column: str, values: list[DateValue]) -> dict:
    """Any of `values` against a stored instant (`ts`): a range whose start and end coincide."""
    return any_of([conditions(column, column, v, ms_to_datetime) for v in values])
