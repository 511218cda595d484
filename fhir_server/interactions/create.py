"""create (`POST [type]`), with conditional create (`If-None-Exist`).

A plain create outside a transaction Bundle joins the store's group commit; a conditional one
runs in its own transaction, so its search and its write see the same state.
"""

from __future__ import annotations

from fhir_server.interactions import conditional
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.registry import interaction
from fhir_server.interactions.responses import accept_resource, version_response


@interaction("create", writes=True, transactional=False)
async def create(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    resource = accept_resource(req.body, route.type, ctx.settings)
    if_none_exist = req.headers.get("if-none-exist")
    if if_none_exist:
        criteria = conditional.parse_criteria(if_none_exist)
        return await ctx.transaction(lambda tx: _create_unless_exists(tx, req, route.type, resource, criteria))
    return await _store_new(ctx, req, route.type, resource)


async def _create_unless_exists(ctx: Context, req: FhirRequest, resource_type: str, resource: Json,
                                criteria: list[tuple[str, str]]) -> FhirResponse:
    existing = conditional.single_match(await conditional.matches(ctx, resource_type, criteria), "create")
    if existing is not None:
        return version_response(ctx, 200, existing)
    return await _store_new(ctx, req, resource_type, resource)


async def _store_new(ctx: Context, req: FhirRequest, resource_type: str, resource: Json) -> FhirResponse:
    # The server assigns ids: a client-sent id is ignored (http.html#create); a transaction
    # Bundle assigns them itself (`req.assigned_id`).
    version = await ctx.store.create(ctx.session, resource_type, resource, ctx.side_writes,
                                     resource_id=req.assigned_id, pending=ctx.pending)
    return version_response(ctx, 201, version)
