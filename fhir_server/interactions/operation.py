"""operation (`[base]/$op`, `[type]/$op`, `[type]/[id]/$op`): dispatch to the operations registry."""

from __future__ import annotations

from fhir_server.fhir.outcome import FhirError
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Route
from fhir_server.interactions.registry import interaction
from fhir_server.operations import load_operations
from fhir_server.operations.registry import find

load_operations()


def operation_level(route: Route) -> str:
    if route.id:
        return "instance"
    return "type" if route.type else "system"


@interaction("operation", transactional=False)
async def invoke(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    level = operation_level(route)
    found = find(route.operation or "", level, route.type)
    if found is None:
        where = f"{route.type} {level}" if route.type else "system"
        raise FhirError(404, "not-supported", f"Operation ${route.operation} is not supported at {where} level")
    if found.affects_state and req.method != "POST":
        raise FhirError(405, "not-supported", f"${found.name} changes data: invoke it with POST",
                        headers={"Allow": "POST"})
    return await found.handler(ctx, req, route)
