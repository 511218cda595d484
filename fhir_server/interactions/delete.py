"""delete (`DELETE [type]/[id]`) and conditional delete (`DELETE [type]?criteria`).

Deleting what does not exist, or was already deleted, succeeds without a new version.
"""

from __future__ import annotations

from fhir_server.interactions import conditional
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Route
from fhir_server.interactions.registry import interaction
from fhir_server.interactions.responses import check_visible, etag


@interaction("delete", writes=True)
async def delete(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    return await _delete(ctx, route.type, route.id)


@interaction("conditional-delete", writes=True)
async def conditional_delete(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    found = await conditional.matches(ctx, route.type, conditional.require_criteria(req.params))
    match = conditional.single_match(found, "delete")
    return await _delete(ctx, route.type, match.id) if match else FhirResponse(204)


async def _delete(ctx: Context, resource_type: str, resource_id: str) -> FhirResponse:
    await check_visible(ctx, resource_type, resource_id)
    version = await ctx.store.delete(ctx.session, resource_type, resource_id, ctx.side_writes)
    if version is None:
        return FhirResponse(204)
    return FhirResponse(204, None, {"ETag": etag(version.vid)}, version)
