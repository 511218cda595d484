"""The FHIR endpoint: every FHIR path under the base goes through `dispatch.perform`."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.negotiation import FORM, parse_body, response_type
from fhir_server.fhir.outcome import FhirError
from fhir_server.interactions.dispatch import error_response, perform
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse

BODY_METHODS = ("POST", "PUT", "PATCH")
NO_BODY_STATUSES = (204, 304)


async def fhir_endpoint(request: Request, state: State) -> Response:
    """Adapt one HTTP request to a FHIR interaction and its outcome back to HTTP."""
    params = request.query_params.multi_items()
    pretty = request.query_params.get("_pretty") == "true"
    media_type = "application/fhir+json"
    try:
        media_type = response_type(request.query_params.get("_format"), request.headers.get("accept"))
        body = None
        path = request.url.path.strip("/")
        if request.method in BODY_METHODS:
            raw = await _read_body(request, state.settings.max_body_bytes)
            content_type = request.headers.get("content-type", "")
            if request.method == "POST" and path.endswith("_search"):
                if raw and not content_type.startswith(FORM):
                    raise FhirError(415, "not-supported", f"POST _search takes {FORM} parameters")
                params = params + parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
            elif raw:
                body = parse_body(content_type, raw, request.method)
        ctx = Context(state.settings, state.database, state.store,
                      state.settings.base_url or f"{request.url.scheme}://{request.url.netloc}")
        response = await perform(ctx, FhirRequest(request.method, path, params, request.headers, body))
    except FhirError as error:
        response = error_response(error)
    return render(response, media_type, pretty, head=request.method == "HEAD")


def render(response: FhirResponse, media_type: str, pretty: bool, head: bool = False) -> Response:
    """The HTTP response for a FHIR response, serialised with orjson (no pydantic round trip)."""
    if response.resource is None or response.status in NO_BODY_STATUSES:
        return Response(status_code=response.status, headers=response.headers)
    content = orjson.dumps(response.resource, option=orjson.OPT_INDENT_2 if pretty else 0)
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
