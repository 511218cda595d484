"""Registered OAuth clients: redirect URIs, allowed scopes and how they authenticate.

`{_id: client_id, redirect_uris, scope, auth_method, secret_hash?, jwks?, jwks_url?, disabled}`;
`auth_method` is `none` (public: PKCE only), `client_secret_basic` (also accepted as
`client_secret_post`) or `private_key_jwt` (Backend Services and confidential SMART apps).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo.errors import DuplicateKeyError

from fhir_server.auth.collections import CLIENTS
from fhir_server.auth.records import Records
from fhir_server.auth.scopes import ScopeError, parse_ceiling
from fhir_server.storage import Database

PUBLIC = "none"
SECRET = "client_secret_basic"
PRIVATE_KEY_JWT = "private_key_jwt"
AUTH_METHODS = (PUBLIC, SECRET, "client_secret_post", PRIVATE_KEY_JWT)
_HASHER = PasswordHasher()


class ClientError(ValueError):
    """A registration that cannot be accepted."""


@dataclass(frozen=True)
class Client:
    client_id: str
    redirect_uris: tuple[str, ...]
    scope: str
    auth_method: str
    jwks: dict | None = None
    jwks_url: str | None = None
    name: str = ""
    secret_hash: str | None = field(default=None, repr=False)
    disabled: bool = False

    @property
    def public(self) -> bool:
        return self.auth_method == PUBLIC

    def to_json(self) -> dict:
        """The registration as RFC 7591 metadata (never the secret)."""
        out = {"client_id": self.client_id, "redirect_uris": list(self.redirect_uris), "scope": self.scope,
               "token_endpoint_auth_method": self.auth_method, "client_name": self.name}
        if self.jwks:
            out["jwks"] = self.jwks
        if self.jwks_url:
            out["jwks_uri"] = self.jwks_url
        return out


def _client(doc: dict) -> Client:
    return Client(doc["_id"], tuple(doc.get("redirect_uris", ())), doc.get("scope", ""), doc["auth_method"],
                  doc.get("jwks"), doc.get("jwks_url"), doc.get("name", ""), doc.get("secret_hash"),
                  bool(doc.get("disabled")))


def _check_redirect(uri: str) -> None:
    parts = urlsplit(uri)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.fragment or not parts.netloc or parts.scheme not in ("https", "http") or (
            parts.scheme == "http" and not loopback):
        raise ClientError(f"redirect URI '{uri}' must be an absolute https URL (http only on loopback) "
                          "without fragment")


class Clients(Records[Client]):
    def __init__(self, database: Database) -> None:
        super().__init__(database.collection(CLIENTS), _client)

    async def register(self, client_id: str | None, redirect_uris: list[str], scope: str, *,
                       secret: str | None = None, public: bool = False, jwks: dict | None = None,
                       jwks_url: str | None = None, name: str = "") -> tuple[Client, str | None]:
        """Register a client; returns it and the secret when one was generated."""
        client_id = client_id or secrets.token_urlsafe(16)
        try:
            parse_ceiling(scope)
        except ScopeError as error:
            raise ClientError(str(error)) from error
        for uri in redirect_uris:
            _check_redirect(uri)
        if sum(bool(x) for x in (public, secret, jwks, jwks_url)) > 1:
            raise ClientError("a client is public, or has a secret, or a JWKS (inline or by URL): one of them")
        if jwks is not None and not isinstance(jwks.get("keys"), list):
            raise ClientError("jwks must be a JSON Web Key Set ({\"keys\": [...]})")
        generated = None
        if public:
            method = PUBLIC
        elif jwks or jwks_url:
            method = PRIVATE_KEY_JWT
        else:
            method = SECRET
            if not secret:
                secret = generated = secrets.token_urlsafe(32)
        doc = {"_id": client_id, "redirect_uris": redirect_uris, "scope": scope, "auth_method": method,
               "jwks": jwks, "jwks_url": jwks_url, "name": name, "disabled": False,
               "secret_hash": await asyncio.to_thread(_HASHER.hash, secret) if secret else None}
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError as error:
            raise ClientError(f"a client '{client_id}' exists already") from error
        return _client(doc), generated



async def secret_matches(client: Client, secret: str) -> bool:
    if not client.secret_hash:
        return False
    try:
        return await asyncio.to_thread(_HASHER.verify, client.secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False
