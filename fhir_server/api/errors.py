"""Errors that escape the FHIR dispatcher (non-FHIR routes, bugs) as OperationOutcomes, never traces."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException

from fhir_server.api.fhir_endpoint import render
from fhir_server.fhir.outcome import FhirError
from fhir_server.interactions.dispatch import error_response

log = logging.getLogger(__name__)

_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def install(app: FastAPI) -> None:
    """Register handlers turning any escaping exception into an OperationOutcome response."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        code = _CODES.get(error.status_code, "processing")
        return render(error_response(FhirError(error.status_code, code, str(error.detail))), _JSON, False)

    @app.exception_handler(FhirError)
    async def fhir_error(request: Request, error: FhirError) -> Response:
        return render(error_response(error), _JSON, False)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        outcome = FhirError(500, "exception", "Internal server error; the event has been logged")
        return render(error_response(outcome), _JSON, False)


_JSON = "application/fhir+json"
