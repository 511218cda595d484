"""update (`PUT [type]/[id]`) and conditional update (`PUT [type]?criteria`)."""

from __future__ import annotations

from fhir_server.fhir.outcome import bad_request
from fhir_server.fhir.primitives import new_id
from fhir_server.interactions import conditional
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.registry import interaction
from fhir_server.interactions.responses import accept_resource, check_visible, parse_version_tag, version_response


@interaction("update", writes=True)
async def update(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    resource = accept_resource(req.body, route.type, ctx.settings)
    if resource.get("id") != route.id:
        raise bad_request(f"The resource id '{resource.get('id')}' must equal the id in the URL '{route.id}'",
                          "id")
    return await store_update(ctx, req, route.type, route.id, resource)


@interaction("conditional-update", writes=True)
async def conditional_update(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    resource = accept_resource(req.body, route.type, ctx.settings)
    found = await conditional.matches(ctx, route.type, conditional.require_criteria(req.params))
    match = conditional.single_match(found, "update")
    body_id = resource.get("id")
    if match is not None and body_id is not None and body_id != match.id:
        raise bad_request(f"The resource id '{body_id}' differs from the matching resource '{match.id}'", "id")
    target = match.id if match is not None else body_id or new_id()
    return await store_update(ctx, req, route.type, target, resource)


async def store_update(ctx: Context, req: FhirRequest, resource_type: str, resource_id: str, resource: Json,
                       method: str = "PUT") -> FhirResponse:
    """Store a new version honouring `If-Match`: 200, or 201 when the update creates."""
    await check_visible(ctx, resource_type, resource_id)
    if_match = req.headers.get("if-match")
    expected = parse_version_tag(if_match, "If-Match") if if_match else None
    version, created = await ctx.store.update(ctx.session, resource_type, resource_id, resource,
                                              method=method, if_match=expected, side=ctx.side_writes,
                                              pending=ctx.pending)
    return version_response(ctx, 201 if created else 200, version)
