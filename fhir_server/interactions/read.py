"""read (`GET [type]/[id]`) and vread (`GET [type]/[id]/_history/[vid]`), with conditional read."""

from __future__ import annotations

from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Route
from fhir_server.interactions.registry import interaction
from fhir_server.interactions.responses import (
    check_visible,
    current_resource,
    live,
    not_modified,
    version_headers,
)


@interaction("read")
async def read(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    version = await current_resource(ctx, route.type, route.id)
    headers = version_headers(ctx, version)
    del headers["Location"]
    if not_modified(req, version):
        return FhirResponse(304, None, headers, version)
    return FhirResponse(200, version.resource, headers, version)


@interaction("vread")
async def vread(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    version = None
    await check_visible(ctx, route.type, route.id)
    if route.vid.isdigit():
        version = await ctx.store.read_version(route.type, route.id, int(route.vid), ctx.session)
    version = live(version, f"Version {route.vid} of {route.type}/{route.id}")
    headers = version_headers(ctx, version)
    del headers["Location"]
    return FhirResponse(200, version.resource, headers, version)
