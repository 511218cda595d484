"""Quantity search parameters: number ranges plus units, with UCUM canonical forms.

Stored as `{"lo", "hi", "s", "c", "u", "nc", "nlo", "nhi"}` (a list when multi-valued): the
number range as for `number` (a comparator `<`/`<=` opens the low end, `>`/`>=` the high end; a
Range spans low..high), the unit system, code and human unit, and — for UCUM units `ucum`
understands — the canonical unit `nc` with the range converted into it (`5.4 mg` also stores
`nc: "g", nlo: nhi: 0.0054`).

A query `5.4|http://unitsofmeasure.org|mg` converts the same way and matches `nc`/`nlo`/`nhi`,
so it finds `0.0054 g`; other units match `s` and `c` exactly; `5.4||mg` matches `c` or `u`;
`5.4` alone matches any unit.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from fhir_server.search.errors import SearchError
from fhir_server.search.registry import PREFIXES
from fhir_server.search.types import number as number_type
from fhir_server.search.types import scoped, split_escaped
from fhir_server.search.types.date import split_prefix
from fhir_server.search.ucum import UCUM, canonical

_INF = math.inf


def _quantity(value: dict) -> dict | None:
    v = number_type.point(value.get("value"))
    if v is None:
        return None
    comparator = value.get("comparator")
    lo = -_INF if comparator in ("<", "<=") else v
    hi = _INF if comparator in (">", ">=") else v
    return _with_units({"lo": lo, "hi": hi}, value)


def _range(value: dict) -> dict | None:
    low, high = value.get("low") or {}, value.get("high") or {}
    lo, hi = number_type.point(low.get("value")), number_type.point(high.get("value"))
    if lo is None and hi is None:
        return None
    entry = {"lo": -_INF if lo is None else lo, "hi": _INF if hi is None else hi}
    return _with_units(entry, low if "code" in low or "unit" in low else high)


def _with_units(entry: dict, unit_source: dict) -> dict:
    system, code, unit = unit_source.get("system"), unit_source.get("code"), unit_source.get("unit")
    if system:
        entry["s"] = system
    if code:
        entry["c"] = code
    if unit:
        entry["u"] = unit
    if system == UCUM and code and (canon := canonical(code)):
        entry["nc"], factor = canon
        entry["nlo"], entry["nhi"] = entry["lo"] * factor, entry["hi"] * factor
    return entry


def _entry(fhir_type: str | None, value: Any) -> dict | None:
    if type(value) is not dict:
        return None
    if fhir_type == "Range" or (fhir_type is None and ("low" in value or "high" in value)):
        return _range(value)
    return _quantity(value)


def index(nodes: list[tuple[str | None, Any]], single: bool) -> Any:
    """One quantity sub-document (single-valued) or a list of them."""
    entries = [e for e in (_entry(t, v) for t, v in nodes) if e is not None]
    if not entries:
        return None
    return entries[0] if single else entries


class QuantityValue(NamedTuple):
    """A parsed quantity query value: the number, and the unit system/code when given."""

    number: number_type.NumberValue
    system: str | None
    code: str | None


def parse(raw: str, modifier: str | None) -> QuantityValue:
    """`[prefix]number[|system|code]`, or `number||code` for a code in any system."""
    parts = split_escaped(raw, "|")
    if len(parts) not in (1, 3):
        raise SearchError("", f"quantity needs number or number|system|code, got {raw!r}")
    prefix, text = split_prefix(parts[0], PREFIXES)
    try:
        number = number_type.parse_number(text, prefix)
    except ValueError as e:
        raise SearchError("", f"invalid quantity {raw!r}") from e
    if len(parts) == 1:
        return QuantityValue(number, None, None)
    return QuantityValue(number, parts[1] or None, parts[2] or None)


def conditions(prefix: str, value: QuantityValue) -> dict:
    """The conditions for one quantity query value, keys under `prefix`."""
    if value.system == UCUM and value.code and (canon := canonical(value.code)):
        unit, factor = canon
        return {"$and": [{f"{prefix}nc": unit}, number_type.conditions(prefix, value.number, factor, "n")]}
    numeric = number_type.conditions(prefix, value.number)
    units: list[dict] = []
    if value.system:
        units.append({f"{prefix}s": value.system})
    if value.code:
        units.append({f"{prefix}c": value.code} if value.system else
                     {"$or": [{f"{prefix}c": value.code}, {f"{prefix}u": value.code}]})
    return {"$and": [*units, numeric]} if units else numeric


def match(field: str, single: bool, modifier: str | None, values: list[QuantityValue]) -> dict:
    """Any of `values` against the quantity (or quantities) stored at `field`."""
    return scoped(field, single, values, conditions)
