"""capabilities (`GET /metadata`): a CapabilityStatement generated from what is implemented.

Interactions come from the handler registry, types from the R4 definitions, so the statement
cannot claim more (or less) than the server does.
"""

from __future__ import annotations

from fhir_server import FHIR_VERSION, __version__
from fhir_server.auth.urls import rest_security
from fhir_server.definitions import resource_types
from fhir_server.fhir.primitives import format_instant, now
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.registry import HANDLERS, allowed, interaction
from fhir_server.operations.registry import capability_entries
from fhir_server.search.capability import system_search, type_search
from fhir_server.validation.conformance import clinic_profile_of_type

# Our interaction codes that are CapabilityStatement.rest.resource.interaction codes.
TYPE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance", "history-type",
                     "create", "search-type")
SYSTEM_INTERACTIONS = ("transaction", "batch", "search-system", "history-system")
FORMATS = ["application/fhir+json", "application/json", "json"]
PATCH_FORMATS = ["application/json-patch+json", "application/fhir+json"]


def _resource(resource_type: str) -> Json:
    return {
        "type": resource_type,
        "interaction": [{"code": c} for c in TYPE_INTERACTIONS if allowed(resource_type, c)],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": allowed(resource_type, "update"),
        "conditionalCreate": allowed(resource_type, "create"),
        "conditionalRead": "full-support",
        "conditionalUpdate": allowed(resource_type, "conditional-update"),
        "conditionalDelete": "single" if allowed(resource_type, "conditional-delete") else "not-supported",
        **(type_search(resource_type) if allowed(resource_type, "search-type") else {}),
        **_operations("type", resource_type),
        **_supported_profiles(resource_type),
    }


def _supported_profiles(resource_type: str) -> Json:
    url = clinic_profile_of_type().get(resource_type)
    return {"supportedProfile": [url]} if url else {}


def _operations(level: str, resource_type: str | None = None) -> Json:
    entries = capability_entries(level, resource_type)
    if level == "type":
        entries += [e for e in capability_entries("instance", resource_type) if e not in entries]
    return {"operation": entries} if entries else {}


def capability_statement(ctx: Context) -> Json:
    """The server's CapabilityStatement for the public base URL in `ctx`."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(now()),
        "publisher": "MedicalCycle FHIR",
        "kind": "instance",
        "software": {"name": "MedicalCycle FHIR", "version": __version__},
        "implementation": {"description": "MedicalCycle FHIR R4 server", "url": ctx.base_url},
        "fhirVersion": FHIR_VERSION,
        "format": FORMATS,
        "patchFormat": PATCH_FORMATS,
        "rest": [{
            "mode": "server",
            **({"security": rest_security(ctx.base_url)} if ctx.settings.auth_enabled else {}),
            "resource": [_resource(t) for t in resource_types()],
            "interaction": [{"code": c} for c in SYSTEM_INTERACTIONS if c in HANDLERS],
            **(system_search() if "search-system" in HANDLERS else {}),
            **_operations("system"),
        }],
    }


@interaction("capabilities")
async def capabilities(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    return FhirResponse(200, capability_statement(ctx))
