"""The OAuth 2.0 / SMART endpoints other than `/auth/authorize`: discovery, JWKS, token,
introspection (RFC 7662), revocation (RFC 7009), EHR launch contexts and client registration
(RFC 7591, for admins).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import replace
from datetime import timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fhir_server.auth.access import TokenAccess
from fhir_server.auth.client_auth import OAuthError, authenticate_client
from fhir_server.auth.clients import PRIVATE_KEY_JWT, Client, ClientError
from fhir_server.auth.collections import CODES, LAUNCHES
from fhir_server.auth.grants import Grant, backend_grant, user_grant
from fhir_server.auth.http import NO_STORE, base_url, emit, form_of, oauth_error
from fhir_server.auth.keys import ALGORITHM
from fhir_server.auth.scopes import NON_RESOURCE_SCOPES, narrow_all
from fhir_server.auth.service import AuthService, digest
from fhir_server.auth.tokens import InvalidToken
from fhir_server.auth.urls import endpoints
from fhir_server.fhir.outcome import FhirError
from fhir_server.fhir.primitives import now

router = APIRouter()
LAUNCH_SECONDS = 300
CAPABILITIES = ["launch-ehr", "launch-standalone", "authorize-post", "client-public", "client-confidential-symmetric",
                "client-confidential-asymmetric", "context-ehr-patient", "context-ehr-encounter",
                "context-standalone-patient", "context-banner", "permission-offline", "permission-online",
                "permission-patient", "permission-user", "permission-v1", "permission-v2", "sso-openid-connect"]
AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"]
SCOPES_SUPPORTED = [*NON_RESOURCE_SCOPES, "patient/*.rs", "patient/*.cruds", "user/*.rs", "user/*.cruds",
                    "system/*.rs", "system/*.cruds", "patient/*.read", "user/*.read", "user/*.write", "system/*.read"]


@router.get("/.well-known/smart-configuration", include_in_schema=False)
async def smart_configuration(request: Request) -> JSONResponse:
    base = base_url(request)
    return JSONResponse({
        "issuer": base, **endpoints(base),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": SCOPES_SUPPORTED, "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"], "capabilities": CAPABILITIES,
    })


@router.get("/.well-known/openid-configuration", include_in_schema=False)
async def openid_configuration(request: Request) -> JSONResponse:
    base = base_url(request)
    urls = endpoints(base)
    return JSONResponse({
        "issuer": base, "authorization_endpoint": urls["authorization_endpoint"],
        "token_endpoint": urls["token_endpoint"], "jwks_uri": urls["jwks_uri"],
        "registration_endpoint": urls["registration_endpoint"],
        "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM], "scopes_supported": SCOPES_SUPPORTED,
        "token_endpoint_auth_methods_supported": AUTH_METHODS, "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "fhirUser", "preferred_username", "nonce"],
    })


@router.get("/auth/jwks", include_in_schema=False)
async def jwks(request: Request) -> JSONResponse:
    await request.app.state.auth.keys.reload_if_stale()
    return JSONResponse(request.app.state.auth.keys.public.as_dict(private=False))


async def _client(request: Request, form: dict[str, str]) -> Client:
    auth: AuthService = request.app.state.auth
    return await authenticate_client(auth.clients, auth.database, form, request.headers.get("authorization"),
                                     endpoints(base_url(request))["token_endpoint"])


@router.post("/auth/token", include_in_schema=False)
async def token(request: Request) -> Response:
    auth: AuthService = request.app.state.auth
    form: dict[str, str] = {}
    try:
        form = await form_of(request)
        client = await _client(request, form)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            body, subtype = await _authorization_code(request, client, form), "issued"
        elif grant_type == "refresh_token":
            body, subtype = await _refresh(request, client, form), "refreshed"
        elif grant_type == "client_credentials":
            body, subtype = await _client_credentials(request, client, form), "issued"
        else:
            raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code, refresh_token or "
                             "client_credentials")
    except OAuthError as error:
        await emit(request, "token", "refused", False, None,
                   {"client_id": form.get("client_id"), "grant_type": form.get("grant_type"),
                    "error": error.error, "description": error.description})
        return oauth_error(error)
    claims = await auth.claims_of(body["access_token"], base_url(request))
    await emit(request, "token", subtype, True, TokenAccess(claims).principal, {"grant_type": grant_type})
    return JSONResponse(body, 200, NO_STORE)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def _authorization_code(request: Request, client: Client, form: dict[str, str]) -> dict:
    auth: AuthService = request.app.state.auth
    doc = await auth.database.collection(CODES).find_one_and_delete(
        {"_id": digest(form.get("code", "")), "expires": {"$gt": now()}})
    if doc is None or doc["client_id"] != client.client_id:
        raise OAuthError("invalid_grant", "unknown, expired or already used authorization code")
    if form.get("redirect_uri") != doc["redirect_uri"]:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
    verifier = form.get("code_verifier", "")
    if not verifier or not hmac.compare_digest(_s256(verifier), doc["code_challenge"]):
        raise OAuthError("invalid_grant", "the PKCE code_verifier does not match the code_challenge")
    grant = Grant.from_doc(doc["grant"])
    if await auth.accounts.get(grant.username or "") is None:
        raise OAuthError("invalid_grant", "the account has been disabled")
    return await auth.issue(grant, base_url(request), refresh=True, nonce=doc.get("nonce"))


async def _refresh(request: Request, client: Client, form: dict[str, str]) -> dict:
    auth: AuthService = request.app.state.auth
    grant = await auth.take_refresh_token(form.get("refresh_token", ""), client.client_id)
    if grant is None:
        raise OAuthError("invalid_grant", "unknown, expired, used or foreign refresh token")
    account = await auth.accounts.get(grant.username or "")
    if account is None:
        raise OAuthError("invalid_grant", "the account has been disabled")
    # Never wider than the original grant, nor than what the client and the user's role allow now
    # (a `scope` parameter may narrow it further).
    words, scopes = user_grant(form.get("scope") or grant.scope, client, account)
    renewed = replace(grant, words=tuple(w for w in words if w in grant.words),
                      scopes=tuple(narrow_all(scopes, list(grant.scopes))), roles=(account.role,))
    return await auth.issue(renewed, base_url(request), refresh=True)


async def _client_credentials(request: Request, client: Client, form: dict[str, str]) -> dict:
    if client.auth_method != PRIVATE_KEY_JWT:
        raise OAuthError("unauthorized_client", "client_credentials is for Backend Services clients "
                         "authenticating with private_key_jwt")
    scopes = backend_grant(form.get("scope", ""), client)
    if not scopes:
        raise OAuthError("invalid_scope", "none of the requested system/ scopes is registered for this client")
    grant = Grant(client.client_id, (), tuple(scopes))
    return await request.app.state.auth.issue(grant, base_url(request), backend=True)


async def _caller(request: Request, form: dict[str, str]) -> Client | TokenAccess:
    """Introspection and revocation callers: an authenticated client, or a bearer of a valid token."""
    authorization = request.headers.get("authorization") or ""
    if authorization.lower().startswith("bearer "):
        try:
            return await request.app.state.auth.access_for(authorization, base_url(request))
        except FhirError as error:
            raise OAuthError("invalid_token", "the bearer token is not valid", 401) from error
    return await _client(request, form)


@router.post("/auth/introspect", include_in_schema=False)
async def introspect(request: Request) -> Response:
    auth: AuthService = request.app.state.auth
    try:
        form = await form_of(request)
        await _caller(request, form)
    except OAuthError as error:
        return oauth_error(error)
    try:
        claims = await auth.claims_of(form.get("token", ""), base_url(request))
    except InvalidToken:
        return JSONResponse({"active": False}, 200, NO_STORE)
    body = {"active": True, "token_type": "Bearer"}
    body.update((k, claims[k]) for k in ("scope", "client_id", "sub", "iss", "aud", "exp", "iat", "jti", "patient",
                                         "encounter", "fhirUser", "username") if k in claims)
    return JSONResponse(body, 200, NO_STORE)


@router.post("/auth/revoke", include_in_schema=False)
async def revoke(request: Request) -> Response:
    auth: AuthService = request.app.state.auth
    try:
        form = await form_of(request)
        caller = await _caller(request, form)
    except OAuthError as error:
        return oauth_error(error)
    client_id = caller.client_id if isinstance(caller, Client) else caller.principal.client_id
    value = form.get("token", "")
    principal = None
    if await auth.take_refresh_token(value, client_id) is None:
        try:
            claims = await auth.claims_of(value, base_url(request))
        except InvalidToken:
            claims = None
        if claims is not None and claims.get("client_id") == client_id:
            await auth.revocations.revoke(claims["jti"], claims["exp"])
            principal = TokenAccess(claims).principal
    await emit(request, "token", "revoked", True, principal, {"client_id": client_id})
    return Response(status_code=200, headers=NO_STORE)  # RFC 7009: also for unknown tokens


async def _bearer(request: Request) -> TokenAccess:
    return await request.app.state.auth.access_for(request.headers.get("authorization"), base_url(request))


async def create_launch(database: object, patient: str, encounter: str | None, fhir_context: list) -> str:
    """A single-use, short-lived EHR launch value bound to a patient (and encounter)."""
    value = secrets.token_urlsafe(24)
    await database.collection(LAUNCHES).insert_one(
        {"_id": digest(value), "patient": patient, "encounter": encounter, "fhirContext": fhir_context,
         "expires": now() + timedelta(seconds=LAUNCH_SECONDS)})
    return value


@router.post("/auth/launch", include_in_schema=False)
async def launch(request: Request) -> Response:
    access = await _bearer(request)
    access.require("read", "Patient")
    if access.restrict("Patient") is not None:
        raise FhirError(403, "forbidden", "Creating a launch context needs access to every patient (an EHR)")
    try:
        body = await request.json()
    except ValueError as error:
        raise FhirError(400, "invalid", "The body must be JSON: {patient, encounter?, fhirContext?}") from error
    patient = body.get("patient") if isinstance(body, dict) else None
    if not isinstance(patient, str) or await request.app.state.store.read("Patient", patient) is None:
        raise FhirError(400, "invalid", "patient must be the id of an existing Patient")
    encounter = body.get("encounter")
    if encounter is not None and (not isinstance(encounter, str)
                                  or await request.app.state.store.read("Encounter", encounter) is None):
        raise FhirError(400, "invalid", "encounter must be the id of an existing Encounter")
    context = body.get("fhirContext") or []
    if not isinstance(context, list):
        raise FhirError(400, "invalid", "fhirContext must be a list")
    value = await create_launch(request.app.state.database, patient, encounter, context)
    return JSONResponse({"launch": value, "expires_in": LAUNCH_SECONDS}, 201, NO_STORE)


@router.post("/auth/register", include_in_schema=False)
async def register(request: Request) -> Response:
    access = await _bearer(request)
    if "admin" not in access.principal.roles:
        raise FhirError(403, "forbidden", "Only admins may register clients")
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError
        method = body.get("token_endpoint_auth_method", "client_secret_basic")
        client, secret = await request.app.state.auth.clients.register(
            None, list(body.get("redirect_uris") or []), str(body.get("scope") or ""),
            public=method == "none", jwks=body.get("jwks"), jwks_url=body.get("jwks_uri"),
            name=str(body.get("client_name") or ""))
    except (ValueError, ClientError) as error:
        return JSONResponse({"error": "invalid_client_metadata", "error_description": str(error) or
                             "the body must be a JSON object of client metadata"}, 400, NO_STORE)
    answer = client.to_json()
    if secret:
        answer["client_secret"] = secret
    return JSONResponse(answer, 201, NO_STORE)
