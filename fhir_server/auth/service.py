"""The authorization server's state for one running app (`app.state.auth`): keys, accounts,
clients, revocations, and the two things the FHIR adapter needs: `access_for` (the bearer token
of a request as an `Access`, else 401) and token issuing for the token endpoint.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta

from fhir_server.auth import collections
from fhir_server.auth.access import TokenAccess
from fhir_server.auth.accounts import Accounts
from fhir_server.auth.clients import Clients
from fhir_server.auth.grants import Grant
from fhir_server.auth.keys import KeyRing
from fhir_server.auth.revocation import RevocationList
from fhir_server.auth.tokens import InvalidToken, access_token, id_token, verify
from fhir_server.config import Settings
from fhir_server.fhir.outcome import FhirError
from fhir_server.fhir.primitives import now
from fhir_server.storage import UNAVAILABLE_ERRORS, Database

VERIFIED_CACHE_SIZE = 4096


def digest(secret: str) -> str:
    """How opaque secrets (codes, refresh tokens, launch values) are stored: never in clear."""
    return hashlib.sha256(secret.encode()).hexdigest()


def unauthorized(description: str, error: str = "invalid_token") -> FhirError:
    """401 with the RFC 6750 `WWW-Authenticate: Bearer` challenge and an OperationOutcome."""
    challenge = f'Bearer realm="fhir", error="{error}", error_description="{description}"'
    if error == "":
        challenge = 'Bearer realm="fhir"'
    return FhirError(401, "login", f"Authentication required: {description}", headers={"WWW-Authenticate": challenge})


class AuthService:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.keys = KeyRing(database)
        self.accounts = Accounts(database, settings)
        self.clients = Clients(database)
        self.revocations = RevocationList(database)
        self.verified: dict[tuple[str, str], tuple[float, TokenAccess]] = {}

    async def start(self) -> None:
        await collections.ensure_indexes(self.database)
        await self.keys.load()

    async def claims_of(self, token: str, base_url: str) -> dict:
        """The claims of a valid, unrevoked access token for this server, else `InvalidToken`."""
        claims = await verify(self.keys, token, base_url, base_url)
        if await self.revocations.is_revoked(claims["jti"]):
            raise InvalidToken("the token has been revoked")
        return claims

    async def access_for(self, authorization: str | None, base_url: str) -> TokenAccess:
        """The access a request's `Authorization` header grants; 401 when absent or invalid."""
        scheme, _, token = (authorization or "").partition(" ")
        if not authorization:
            raise unauthorized("a bearer access token is required", error="")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be 'Bearer <access token>'", "invalid_request")
        try:
            return await self._access(token.strip(), base_url)
        except InvalidToken as error:
            raise unauthorized(str(error)) from error
        except UNAVAILABLE_ERRORS as error:  # the revocation list cannot be read: fail closed
            raise FhirError(503, "transient", "The database is unavailable; nothing was changed") from error

    async def _access(self, token: str, base_url: str) -> TokenAccess:
        """The access of a token, from the cache of tokens already verified (a signature check and
        the scope parsing cost about a millisecond; the revocation list is still consulted)."""
        key = (token, base_url)
        cached = self.verified.get(key)
        if cached is None or cached[0] < time.time():
            claims = await verify(self.keys, token, base_url, base_url)
            if len(self.verified) >= VERIFIED_CACHE_SIZE:
                del self.verified[next(iter(self.verified))]  # the oldest entry
            cached = self.verified[key] = (claims["exp"], TokenAccess(claims))
        if await self.revocations.is_revoked(cached[1].principal.jti):
            raise InvalidToken("the token has been revoked")
        return cached[1]

    async def issue(self, grant: Grant, base_url: str, *, backend: bool = False, refresh: bool = False,
                    nonce: str | None = None) -> dict:
        """The token response for `grant` (RFC 6749 5.1 plus SMART's launch context fields)."""
        lifetime = self.settings.backend_token_seconds if backend else min(3600, self.settings.access_token_seconds)
        await self.keys.reload_if_stale()  # another process (`fhir-server keys rotate`) may have rotated
        token, _ = access_token(self.keys, grant, base_url, base_url, lifetime)
        body: dict = {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": grant.scope}
        context = {"patient": grant.patient, "encounter": grant.encounter, "fhirContext": grant.fhir_context}
        body.update((k, v) for k, v in context.items() if v)
        if grant.patient:
            body["need_patient_banner"] = grant.need_patient_banner
        if "openid" in grant.words and grant.username:
            body["id_token"] = id_token(self.keys, grant, base_url, lifetime, nonce)
        if refresh and ("offline_access" in grant.words or "online_access" in grant.words):
            body["refresh_token"] = await self.new_refresh_token(grant)
        return body

    async def new_refresh_token(self, grant: Grant) -> str:
        value = secrets.token_urlsafe(32)
        await self.database.collection(collections.REFRESH).insert_one(
            {"_id": digest(value), "grant": grant.to_doc(), "client_id": grant.client_id,
             "expires": now() + timedelta(days=self.settings.refresh_token_days)})
        return value

    async def take_refresh_token(self, value: str, client_id: str) -> Grant | None:
        """The grant behind a refresh token, which is used up (rotation); None if unknown or not the client's."""
        doc = await self.database.collection(collections.REFRESH).find_one_and_delete(
            {"_id": digest(value), "client_id": client_id, "expires": {"$gt": now()}})
        return Grant.from_doc(doc["grant"]) if doc else None
