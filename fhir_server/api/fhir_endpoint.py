"""The FHIR endpoint: every FHIR path under the base goes through `dispatch.perform`."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fhir_server.api.negotiation import FORM, parse_body, response_type
from fhir_server.audit.capture import RequestAuditor, RequestFacts
from fhir_server.audit.log import AuditUnavailable
from fhir_server.audit.security import actor_from
from fhir_server.auth import gate
from fhir_server.fhir import json as fhir_json
from fhir_server.fhir.outcome import FhirError
from fhir_server.fhir.primitives import new_id
from fhir_server.interactions.dispatch import error_response, perform
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Route
from fhir_server.interactions.routing import parse_route

BODY_METHODS = ("POST", "PUT", "PATCH")
NO_BODY_STATUSES = (204, 304)
# A client's X-Request-Id is kept when it is a plausible id; anything else is replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


async def fhir_endpoint(request: Request, state: State) -> Response:
    """Adapt one HTTP request to a FHIR interaction and its outcome back to HTTP."""
    params = request.query_params.multi_items()
    pretty = request.query_params.get("_pretty") == "true"
    media_type = "application/fhir+json"
    base_url = state.settings.base_url or f"{request.url.scheme}://{request.url.netloc}"
    request_id = request.headers.get("x-request-id", "")
    if not _REQUEST_ID.fullmatch(request_id):
        request_id = new_id()
    facts = RequestFacts(request_id, request.client.host if request.client else None, base_url)
    auditor = RequestAuditor(state.audit, facts) if state.audit else None
    path = request.url.path.strip("/")
    try:
        access = await gate.access_of(request, state, path, base_url)
        if auditor is not None:
            auditor.identify(actor_from(access.principal))
        media_type = response_type(request.query_params.get("_format"), request.headers.get("accept"))
        body = None
        if request.method in BODY_METHODS:
            raw = await _read_body(request, state.settings.max_body_bytes)
            content_type = request.headers.get("content-type", "")
            if request.method == "POST" and path.endswith("_search"):
                if raw and not content_type.startswith(FORM):
                    raise FhirError(415, "not-supported", f"POST _search takes {FORM} parameters")
                params = params + parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
            elif raw:
                body = parse_body(content_type, raw, request.method)
        # Another server process may have changed the custom SearchParameters this one searches with.
        await state.search_parameters.refresh(state.settings.search_parameter_refresh_seconds)
        ctx = Context(state.settings, state.database, state.store, base_url, access=access, auditor=auditor)
        response = await perform(ctx, FhirRequest(request.method, path, params, request.headers, body))
        await gate.refused(request, state, access, path, response.status)
    except FhirError as error:  # refused before it became an interaction: still on the record
        response = error_response(error)
        if auditor is not None:
            try:
                await auditor.record(FhirRequest(request.method, path, params),
                                     _route_or_none(request.method, path), response, [])
            except AuditUnavailable:
                response = error_response(FhirError(503, "transient", "The audit log cannot be written; the "
                                                    "request was refused so that it does not go unaudited"))
    response.headers["X-Request-Id"] = request_id
    return render(response, media_type, pretty, head=request.method == "HEAD")


def _route_or_none(method: str, path: str) -> Route | None:
    try:
        return parse_route(method, path)
    except FhirError:
        return None


def render(response: FhirResponse, media_type: str, pretty: bool, head: bool = False) -> Response:
    """The HTTP response for a FHIR response, serialised with orjson (no pydantic round trip)."""
    if response.stream is not None:
        return StreamingResponse(response.stream, response.status, response.headers, media_type=response.media_type)
    if response.resource is None or response.status in NO_BODY_STATUSES:
        return Response(status_code=response.status, headers=response.headers)
    content = fhir_json.dumps(response.resource, option=orjson.OPT_INDENT_2 if pretty else 0)
    return Response(b"" if head else content, response.status, response.headers,
                    media_type=f"{media_type}; charset=utf-8")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> FhirError:
    return FhirError(413, "too-costly", f"The request body exceeds the limit of {limit} bytes")
