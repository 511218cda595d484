"""Number search parameters: stored values as ranges, query values with implicit precision.

Stored as `{"lo": float, "hi": float}` (a list for a multi-valued parameter); a plain number has
`lo == hi`, a Range (for quantities) spans low..high, a missing end is infinite. A query value's
precision gives its range: `100` is [99.5, 100.5), `100.00` is [99.995, 100.005), `1e2` is
[50, 150). The prefixes (`_conditions`) follow the spec: `eq` means the target lies in the
query's range, `gt100` means above exactly 100, `ap` means within 10% (or the precision range,
whichever is wider).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from fhir_server.search.errors import SearchError
from fhir_server.search.registry import PREFIXES
from fhir_server.search.types import scoped
from fhir_server.search.types.date import split_prefix

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def point(value: Any) -> float | None:
    if type(value) in (int, float, Decimal):
        return float(value)
    if type(value) is str:  # decimals kept as strings by a lossless JSON reader
        try:
            return float(value)
        except ValueError:
            return None
    return None


def index(nodes: list[tuple[str | None, Any]], single: bool) -> Any:
    """`{"lo", "hi"}` per number (one sub-document when single-valued)."""
    values = {}
    for _, value in nodes:
        v = point(value)
        if v is not None:
            values[v] = None
    if not values:
        return None
    if single:
        v = next(iter(values))
        return {"lo": v, "hi": v}
    return [{"lo": v, "hi": v} for v in values]


class NumberValue(NamedTuple):
    """A parsed query number: prefix, the exact value, and its implicit-precision range [lo, hi)."""

    prefix: str
    value: float
    lo: float
    hi: float


def parse_number(text: str, prefix: str = "eq") -> NumberValue:
    """A number with its precision range, raising ValueError when it is not a number."""
    if not _NUMBER.fullmatch(text):
        raise ValueError(text)
    try:
        d = Decimal(text)
    except InvalidOperation as e:
        raise ValueError(text) from e
    half = Decimal(5).scaleb(d.as_tuple().exponent - 1)
    return NumberValue(prefix, float(d), float(d - half), float(d + half))


def parse(raw: str, modifier: str | None) -> NumberValue:
    """A prefixed number (`ge5.4`, `100`, `1e2`)."""
    prefix, text = split_prefix(raw, PREFIXES)
    try:
        return parse_number(text, prefix)
    except ValueError as e:
        raise SearchError("", f"invalid number {raw!r}") from e


def conditions(prefix: str, value: NumberValue, factor: float = 1.0, key: str = "") -> dict:
    """Conditions on `{prefix}{key}lo` / `{prefix}{key}hi` for `value` scaled by `factor`."""
    lo_f, hi_f = f"{prefix}{key}lo", f"{prefix}{key}hi"
    v, qlo, qhi = value.value * factor, value.lo * factor, value.hi * factor
    match value.prefix:
        case "eq":
            return {lo_f: {"$gte": qlo}, hi_f: {"$lt": qhi}}
        case "ne":
            return {"$or": [{lo_f: {"$lt": qlo}}, {hi_f: {"$gte": qhi}}]}
        case "gt":
            return {hi_f: {"$gt": v}}
        case "lt":
            return {lo_f: {"$lt": v}}
        case "ge":
            return {hi_f: {"$gte": v}}
        case "le":
            return {lo_f: {"$lte": v}}
        case "sa":
            return {lo_f: {"$gt": v}}
        case "eb":
            return {hi_f: {"$lt": v}}
        case _:  # ap
            spread = abs(v) * 0.1
            return {lo_f: {"$lte": max(qhi, v + spread)}, hi_f: {"$gte": min(qlo, v - spread)}}


def match(field: str, single: bool, modifier: str | None, values: list[NumberValue]) -> dict:
    """Any of `values` against the number(s) stored at `field`."""
    return scoped(field, single, values, conditions)
