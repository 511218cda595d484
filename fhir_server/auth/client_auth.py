"""Client authentication at the token, introspection and revocation endpoints.

Public clients name themselves (`client_id`); confidential ones send their secret (HTTP Basic or
form) or a `private_key_jwt` assertion (SMART Backend Services): RS384 or ES384, `iss` = `sub` =
client_id, `aud` = the token URL, `exp` at most 5 minutes ahead, a `jti` never seen before
(kept until the assertion expires), verified with the client's JWKS, inline or fetched by URL.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pymongo.errors import DuplicateKeyError

from fhir_server.auth.clients import PRIVATE_KEY_JWT, PUBLIC, Client, Clients, secret_matches
from fhir_server.auth.collections import ASSERTIONS
from fhir_server.storage import Database

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ["RS384", "ES384"]
MAX_ASSERTION_SECONDS = 300


class OAuthError(Exception):
    """An OAuth error response: `error` code, description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


async def authenticate_client(clients: Clients, database: Database, form: dict[str, str],
                              authorization: str | None, token_url: str) -> Client:
    """The client a request to an OAuth endpoint authenticates as; `OAuthError` otherwise."""
    if form.get("client_assertion_type") or form.get("client_assertion"):
        return await _by_assertion(clients, database, form, token_url)
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if authorization and authorization.lower().startswith("basic "):
        try:
            raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError) as error:
            raise invalid_client("malformed Basic credentials") from error
        user, _, password = raw.partition(":")
        client_id, secret = unquote(user), unquote(password)
    if not client_id:
        raise invalid_client("the client is not identified")
    client = await clients.get(client_id)
    if client is None:
        raise invalid_client("unknown or disabled client")
    if client.auth_method == PUBLIC:
        if secret:
            raise invalid_client("a public client has no secret")
        return client
    if client.auth_method == PRIVATE_KEY_JWT:
        raise invalid_client("this client authenticates with a private_key_jwt client assertion")
    if not secret or not await secret_matches(client, secret):
        raise invalid_client("wrong client secret")
    return client


async def _by_assertion(clients: Clients, database: Database, form: dict[str, str], token_url: str) -> Client:
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
        raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}, with a client_assertion")
    assertion = form["client_assertion"]
    try:  # unverified: only to learn which client's keys verify it
        client_id = json.loads(jws.extract_compact(assertion.encode()).payload).get("iss")
    except (JoseError, ValueError, AttributeError) as error:
        raise invalid_client("malformed client assertion") from error
    client = await clients.get(client_id) if isinstance(client_id, str) else None
    if client is None or client.auth_method != PRIVATE_KEY_JWT:
        raise invalid_client("the assertion's issuer is not a registered private_key_jwt client")
    keys = KeySet.import_key_set(client.jwks if client.jwks else await _fetch_jwks(client.jwks_url))
    try:
        claims = jwt.decode(assertion, keys, algorithms=ASSERTION_ALGORITHMS).claims
    except (JoseError, ValueError) as error:
        raise invalid_client("the client assertion's signature does not verify with the client's keys") from error
    _check_assertion_claims(claims, client.client_id, token_url)
    try:
        await database.collection(ASSERTIONS).insert_one(
            {"_id": f"{client.client_id} {claims['jti']}", "expires": datetime.fromtimestamp(claims["exp"], UTC)})
    except DuplicateKeyError as error:
        raise invalid_client("this client assertion (jti) has been used before") from error
    return client


def _check_assertion_claims(claims: dict, client_id: str, token_url: str) -> None:
    current = time.time()
    if claims.get("sub") != client_id:
        raise invalid_client("the client assertion's iss and sub must both be the client_id")
    audiences = claims.get("aud")
    if token_url not in (audiences if isinstance(audiences, list) else [audiences]):
        raise invalid_client(f"the client assertion's aud must be the token URL {token_url}")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < current or exp > current + MAX_ASSERTION_SECONDS + 30:
        raise invalid_client("the client assertion's exp must lie in the next 5 minutes")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise invalid_client("the client assertion needs a jti")


async def _fetch_jwks(url: str | None) -> dict:
    if not url:
        raise invalid_client("the client has no keys registered")
    try:
        async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
            response = await http.get(url)
            response.raise_for_status()
            return response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise invalid_client(f"the client's JWKS at {url} cannot be fetched") from error
