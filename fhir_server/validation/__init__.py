"""Validation of FHIR R4 resources, as written by clients, before they are stored.

Owns `validate_resource()`, the check every create/update runs, in two passes:

1. `structure`: the strict R4 walker, driven by the compiled element model of the official R4
   StructureDefinitions (`fhir_server.definitions.model`): JSON format rules, properties,
   cardinalities, primitive types and regexes, extensions, contained and nested resources.
2. `models`: when the walker found no error, the fhir.resources R4B pydantic models, for the
   resource types whose R4B model matches R4 (`r4b_model_types()`), which add value checks such
   as real calendar dates.

Profiles (fixed/pattern values, slicing, bindings, FHIRPath invariants) are validated by
`profile.validate_profile()` against a StructureDefinition snapshot; `conformance` decides which
profiles a written resource must meet (those it claims, and those `FHIR_REQUIRE_PROFILES` requires).
"""

from __future__ import annotations

from fhir_server.validation.issue import Issue
from fhir_server.validation.models import r4b_model_types, validate_with_r4b
from fhir_server.validation.structure import validate_structure

__all__ = ["Issue", "r4b_model_types", "validate_resource"]


def validate_resource(resource: object) -> list[Issue]:
    """All problems that make `resource` (parsed JSON) invalid R4; an empty list if it is valid."""
    issues, types = validate_structure(resource)
    if issues or not types <= r4b_model_types():
        return issues
    return validate_with_r4b(resource)
