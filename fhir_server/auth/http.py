"""Small HTTP helpers shared by the OAuth endpoints: the public base URL, form bodies, OAuth errors."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse

from fhir_server.auth.client_auth import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def base_url(request: Request) -> str:
    """The FHIR base URL (also the issuer and the tokens' audience), as the FHIR endpoint derives it."""
    configured = request.app.state.settings.base_url
    return configured or f"{request.url.scheme}://{request.url.netloc}"


async def form_of(request: Request) -> dict[str, str]:
    """The `application/x-www-form-urlencoded` body (OAuth endpoints take nothing else), last value wins."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    form = await request.form()
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def oauth_error(error: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    return JSONResponse({"error": error.error, "error_description": error.description}, error.status, headers)


def redirect_with(uri: str, params: dict[str, str | None], status: int = 302) -> RedirectResponse:
    """A redirect to a client's registered `uri` with OAuth response parameters added to its query."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(f"{uri}{'&' if '?' in uri else '?'}{query}", status)


async def emit(request: Request, kind: str, subtype: str, outcome_ok: bool, principal: object, detail: dict) -> None:
    """Hand a security event to `app.state.security_events` with the caller's address."""
    address = request.client.host if request.client else None
    await request.app.state.security_events.emit(kind, subtype, outcome_ok, principal, address, detail)
