"""FHIR JSON in and out without losing decimal precision (hl7.org/fhir/R4/json.html#primitive).

A FHIR decimal's precision is part of its value: `1.50` must come back as `1.50`, not `1.5`.
Bodies are read with orjson; only when a body holds a number whose text a float would not
reproduce (a trailing zero, an exponent, more digits than a double carries) is it re-read with
those numbers as `decimal.Decimal`; they are stored as BSON Decimal128 (`storage.codecs`) and
written back out verbatim.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

# Text in which a JSON number may not survive as a float: a fraction ending in 0, an exponent,
# 16+ digits, a tiny fraction. (It may match inside strings too: that only costs the slow path.)
_LOSSY_NUMBER = re.compile(rb"\d\.\d*0(?!\d)|\d[eE]|\d{16,}|\.0{4,}")

JSONError = ValueError
"""What `loads` raises for text that is not JSON (orjson's and json's decode errors are ValueErrors)."""


def _number(text: str) -> float | Decimal:
    value = float(text)
    return value if repr(value) == text else Decimal(text)


def loads(raw: bytes | str) -> Any:
    """Parse JSON; numbers whose text a float would change become `Decimal`."""
    if _LOSSY_NUMBER.search(raw.encode() if isinstance(raw, str) else raw) is None:
        return orjson.loads(raw)
    return json.loads(raw, parse_float=_number, parse_int=_integer, parse_constant=_not_json)


def _integer(text: str) -> int | Decimal:
    """Integers beyond 64 bits (BSON's limit) can only be decimals; keep them exact as such."""
    value = int(text)
    return value if -(2**63) <= value < 2**63 else Decimal(text)


def _not_json(text: str) -> None:
    raise ValueError(f"{text} is not a JSON number")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any, option: int = 0) -> bytes:
    """Serialise to JSON bytes with orjson, decimals written as they were received."""
    return orjson.dumps(value, default=_default, option=option)
