"""Compartment membership from the R4 CompartmentDefinitions.

For each resource type, `compartment_params(type)` lists, per compartment (Patient, Encounter,
RelatedPerson, Practitioner, Device), the reference search parameters whose values place a
resource in that compartment (Observation: Patient via subject and performer...).
`memberships` turns a resource's extracted reference values into the owners, `Patient/123`...
A resource of a compartment type is also a member of its own compartment, so
`Patient/123/*` and `patient/` scopes see the Patient itself.
"""

from __future__ import annotations

from functools import cache

from fhir_server.definitions import compartment_definitions

KEY = "@compartment"


@cache
def compartment_params(resource_type: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`((compartment, (param codes...)), ...)` for `resource_type`."""
    out = []
    for code, definition in sorted(compartment_definitions().items()):
        for entry in definition.get("resource", ()):
            if entry["code"] == resource_type and entry.get("param"):
                out.append((code, tuple(entry["param"])))
    return tuple(out)


def memberships(resource_type: str, resource_id: str | None, sp: dict) -> list[str]:
    """The compartments (`Patient/123`...) a resource with extracted values `sp` belongs to."""
    owners: dict[str, None] = {}
    for compartment, params in compartment_params(resource_type):
        prefix = compartment + "/"
        for code in params:
            refs = (sp.get(code) or {}).get("r")
            if refs is None:
                continue
            for ref in (refs,) if type(refs) is str else refs:
                if ref.startswith(prefix):
                    owners[ref] = None
    if resource_id and resource_type in compartment_definitions():
        owners[f"{resource_type}/{resource_id}"] = None
    return list(owners)
