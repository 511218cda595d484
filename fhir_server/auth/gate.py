"""The FHIR API's door: the access of a request from its bearer token, and security events for refusals.

`/metadata` is open (SMART discovery needs it); every other FHIR request needs a valid access
token unless the server runs with `--insecure-no-auth`.
"""

from __future__ import annotations

from starlette.datastructures import State
from starlette.requests import Request

from fhir_server.fhir.outcome import FhirError
from fhir_server.interactions.model import UNRESTRICTED, Access

OPEN_PATHS = frozenset({"metadata"})


async def access_of(request: Request, state: State, path: str, base_url: str) -> Access:
    """The caller's access; a 401 `FhirError` (with `WWW-Authenticate`) when the token is missing or bad."""
    if not state.settings.auth_enabled or path in OPEN_PATHS:
        return UNRESTRICTED
    try:
        return await state.auth.access_for(request.headers.get("authorization"), base_url)
    except FhirError as error:
        await state.security_events.emit("access", "unauthenticated", False, None, _address(request),
                                         {"path": path, "reason": error.issues[0].diagnostics})
        raise


async def refused(request: Request, state: State, access: Access, path: str, status: int) -> None:
    """Report a 403 (insufficient scope) as a security event."""
    if status == 403:
        await state.security_events.emit("access", "forbidden", False, access.principal, _address(request),
                                         {"path": path, "method": request.method})


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None
