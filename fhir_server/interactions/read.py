"""read (`GET [type]/[id]`) and vread (`GET [type]/[id]/_history/[vid]`), with conditional read."""

from __future__ import annotations

from fhir_server.fhir.outcome import gone, not_found
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Route
from fhir_server.interactions.registry import interaction
from fhir_server.interactions.responses import not_modified, version_headers


@interaction("read")
async def read(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    version = await ctx.store.read(route.type, route.id, ctx.session)
    if version is None:
        raise not_found(f"{route.type}/{route.id} is not known")
    if version.deleted:
        raise gone(f"{route.type}/{route.id} was deleted")
    headers = version_headers(ctx, version)
    del headers["Location"]
    if not_modified(req, version):
        return FhirResponse(304, None, headers, version)
    return FhirResponse(200, version.resource, headers, version)


@interaction("vread")
async def vread(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    version = None
    if route.vid.isdigit():
        version = await ctx.store.read_version(route.type, route.id, int(route.vid), ctx.session)
    if version is None:
        raise not_found(f"{route.type}/{route.id} has no version '{route.vid}'")
    if version.deleted:
        raise gone(f"Version {route.vid} of {route.type}/{route.id} is a deletion")
    headers = version_headers(ctx, version)
    del headers["Location"]
    return FhirResponse(200, version.resource, headers, version)
