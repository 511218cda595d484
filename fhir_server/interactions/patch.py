"""patch (`PATCH [type]/[id]`) and conditional patch, with JSON Patch or FHIRPath Patch bodies.

The body is a JSON Patch operation list (`application/json-patch+json`; in a Bundle, a Binary
holding one) or a FHIRPath Patch `Parameters` resource. The patched resource must keep its type
and id and still be valid, else 422.
"""

from __future__ import annotations

import base64

import orjson

from fhir_server.fhir import json as fhir_json
from fhir_server.fhir.outcome import FhirError, bad_request, not_found, unprocessable
from fhir_server.interactions import conditional
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.registry import interaction
from fhir_server.interactions.responses import check_valid, current_resource
from fhir_server.interactions.update import store_update
from fhir_server.patch import PatchError, apply_fhirpath_patch, apply_json_patch


@interaction("patch", writes=True)
async def patch(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    current = await current_resource(ctx, route.type, route.id)
    return await _patch_and_store(ctx, req, current.resource)


@interaction("conditional-patch", writes=True)
async def conditional_patch(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    found = await conditional.matches(ctx, route.type, conditional.require_criteria(req.params))
    match = conditional.single_match(found, "patch")
    if match is None:
        raise not_found(f"No {route.type} matches the criteria of this conditional patch")
    return await _patch_and_store(ctx, req, match.resource)


async def _patch_and_store(ctx: Context, req: FhirRequest, resource: Json) -> FhirResponse:
    patched = apply_patch(resource, req.body)
    for element in ("resourceType", "id"):
        if patched.get(element) != resource[element]:
            raise unprocessable(f"A patch may not change the resource's {element}", element)
    check_valid(patched, 422, ctx.settings)
    return await store_update(ctx, req, resource["resourceType"], resource["id"], patched, "PATCH")


def apply_patch(resource: Json, body: object) -> Json:
    """Apply a JSON Patch list, a Binary holding one, or a FHIRPath Patch Parameters resource."""
    try:
        if isinstance(body, list):
            return apply_json_patch(resource, body)
        if isinstance(body, dict) and body.get("resourceType") == "Binary":
            return apply_json_patch(resource, _binary_json_patch(body))
        if isinstance(body, dict) and body.get("resourceType") == "Parameters":
            return apply_fhirpath_patch(resource, body)
    except PatchError as error:
        raise FhirError(400 if error.kind == "invalid" else 422, error.kind, error.message,
                        error.expression) from error
    raise bad_request("A PATCH body must be a JSON Patch document or a FHIRPath Patch Parameters resource")


def _binary_json_patch(binary: Json) -> object:
    if binary.get("contentType", "").split(";")[0].strip() != "application/json-patch+json":
        raise bad_request("A Binary patch must have contentType application/json-patch+json", "Binary.contentType")
    try:
        return fhir_json.loads(base64.b64decode(binary.get("data", ""), validate=True))
    except (ValueError, orjson.JSONDecodeError) as error:
        raise bad_request(f"The Binary's data is not a base64 JSON Patch: {error}", "Binary.data") from error
