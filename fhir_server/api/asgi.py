"""The ASGI application uvicorn runs: FHIR requests straight to the FHIR endpoint, the rest to FastAPI.

FHIR paths skip FastAPI's router, dependency machinery and middleware stack, which cost about
0.45 ms of CPU per request (measured with py-spy on the create path). What is a FHIR path follows
from the FHIR URL grammar: the base itself, `metadata`, `_history`, `_search`, `$operation`, or a
first segment starting with an upper-case letter, as every resource type does (unknown types
then get the FHIR 404). Everything else (health, docs, the authorization server...) is FastAPI's.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from fhir_server.api.fhir_endpoint import fhir_endpoint, render
from fhir_server.fhir.outcome import FhirError
from fhir_server.interactions.dispatch import error_response

log = logging.getLogger(__name__)


_FHIR_WORDS = frozenset({"", "metadata", "_history", "_search"})


def is_fhir_path(path: str) -> bool:
    """Whether `path` belongs to the FHIR REST API (by its first segment)."""
    first = path.lstrip("/").split("/", 1)[0]
    return first in _FHIR_WORDS or first[:1].isupper() or first.startswith("$")


class ServerApplication:
    """Routes each HTTP request to the FHIR endpoint or to the FastAPI app `api`."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    @property
    def state(self) -> State:
        return self.api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_fhir_path(scope["path"]):
            await self.api(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await fhir_endpoint(request, self.api.state)
        except Exception:
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            outcome = FhirError(500, "exception", "Internal server error; the event has been logged")
            response = render(error_response(outcome), "application/fhir+json", False)
        await response(scope, receive, send)
