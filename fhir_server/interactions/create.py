"""create (`POST [type]`), with conditional create (`If-None-Exist`)."""

from __future__ import annotations

from fhir_server.interactions import conditional
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Route
from fhir_server.interactions.registry import interaction
from fhir_server.interactions.responses import accept_resource, version_response


@interaction("create", writes=True)
async def create(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    resource = accept_resource(req.body, route.type)
    if_none_exist = req.headers.get("if-none-exist")
    if if_none_exist:
        criteria = conditional.parse_criteria(if_none_exist)
        existing = conditional.single_match(await conditional.matches(ctx, route.type, criteria), "create")
        if existing is not None:
            return version_response(ctx, 200, existing)
    # The server assigns ids: a client-sent id is ignored (http.html#create).
    version = await ctx.store.create(ctx.session, route.type, resource)
    return version_response(ctx, 201, version)
