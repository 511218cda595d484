"""The value type modules by SearchParameter type code."""

from __future__ import annotations

from types import ModuleType

from fhir_server.search.types import date, number, quantity, reference, string, token, uri

MODULES: dict[str, ModuleType] = {
    "string": string, "token": token, "reference": reference, "date": date, "number": number,
    "quantity": quantity, "uri": uri,
}
# Types whose index() returns a list of sub-documents when not single-valued.
RANGE_TYPES = frozenset({"date", "number", "quantity"})
