"""SMART helpers for tests: clients and accounts made through the server's own code, and real grants.

- `register_backend_client` registers a Backend Services client with an EC P-384 key made here;
  `BackendAuth` (an `httpx.Auth`) obtains `client_credentials` tokens with signed assertions and
  fetches a new one when the current one is about to expire. The `client` fixture carries one.
- `create_user` / `register_app` create accounts and SMART apps; `user_token` runs the whole
  authorization code flow with PKCE over HTTP (login and consent forms) and returns the token
  response.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import re
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from fhir_server.auth.accounts import Account, Accounts
from fhir_server.auth.clients import Clients
from fhir_server.config import Settings
from fhir_server.storage import Database

T = TypeVar("T")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "correct horse battery staple"
HTTP = httpx.Client(timeout=60)
"""For one-off requests: generous timeouts, since the shared test machine can be very busy."""


FULL_ACCESS = "system/*.cruds system/AuditEvent.rs"
"""Everything, the audit trail included: a `*` never covers AuditEvent, so it is named."""


def run_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` against the server's database with the real storage code, in a fresh event loop on
    its own thread (callers such as Playwright's sync API may hold a running loop)."""

    async def main() -> T:
        database = Database(settings.mongodb_uri, settings.database_name)
        try:
            return await work(database)
        finally:
            await database.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def generate_key(alg: str = "ES384") -> ECKey | RSAKey:
    kid = uuid.uuid4().hex
    if alg == "ES384":
        return ECKey.generate_key("P-384", parameters={"kid": kid, "alg": alg}, private=True)
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": alg}, private=True)


def register_backend_client(settings: Settings, scope: str = FULL_ACCESS, alg: str = "ES384",
                            client_id: str | None = None, jwks_url: str | None = None) -> tuple[str, Any]:
    """A private_key_jwt client with a key generated here: (client_id, private key)."""
    key = generate_key(alg)
    client_id = client_id or f"backend-{uuid.uuid4().hex[:8]}"
    jwks = None if jwks_url else {"keys": [key.as_dict(private=False)]}
    run_db(settings, lambda db: Clients(db).register(client_id, [], scope, jwks=jwks, jwks_url=jwks_url))
    return client_id, key


def client_assertion(client_id: str, key: Any, token_url: str, **overrides: Any) -> str:
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": int(time.time()) + 240,
              "jti": secrets.token_hex(16)}
    claims.update(overrides)
    alg = key.alg or ("ES384" if isinstance(key, ECKey) else "RS384")
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])


def token_endpoint(url: str) -> str:
    """The token URL the server advertises (the `aud` of client assertions), from SMART discovery."""
    return HTTP.get(f"{url}/.well-known/smart-configuration").json()["token_endpoint"]


def backend_token(url: str, client_id: str, key: Any, scope: str = FULL_ACCESS) -> httpx.Response:
    """POST a client_credentials request to the server at `url` (possibly behind another public base)."""
    token_url = token_endpoint(url)
    return HTTP.post(f"{url}/auth/token", data={"grant_type": "client_credentials", "scope": scope,
                                       "client_assertion_type": ASSERTION_TYPE,
                                       "client_assertion": client_assertion(client_id, key, token_url)})


class BackendAuth(httpx.Auth):
    """Bearer tokens from the client_credentials grant, renewed shortly before they expire."""

    def __init__(self, url: str, client_id: str, key: Any, scope: str = FULL_ACCESS) -> None:
        self.url, self.client_id, self.key, self.scope = url, client_id, key, scope
        self.token: str | None = None
        self.expires = 0.0
        self.lock = threading.Lock()

    def current(self) -> str:
        with self.lock:
            if self.token is None or time.monotonic() > self.expires - 30:
                response = backend_token(self.url, self.client_id, self.key, self.scope)
                response.raise_for_status()
                body = response.json()
                self.token, self.expires = body["access_token"], time.monotonic() + body["expires_in"]
            return self.token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.current()}"}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.current()}"
        yield request


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def create_user(settings: Settings, role: str, fhir_user: str | None = None, password: str = PASSWORD) -> Account:
    username = f"{role}-{uuid.uuid4().hex[:8]}"
    return run_db(settings, lambda db: Accounts(db, settings).create(username, password, role, fhir_user))


def register_app(settings: Settings, scope: str, *, public: bool = True, redirect_uri: str = REDIRECT,
                 name: str = "Test App") -> tuple[str, str | None]:
    """A SMART app: (client_id, generated secret or None for a public client)."""
    client_id = f"app-{uuid.uuid4().hex[:8]}"
    client, secret = run_db(settings, lambda db: Clients(db).register(client_id, [redirect_uri], scope,
                                                                       public=public, name=name))
    return client.client_id, secret


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name} in the page"
    return match.group(1)


def authorize(url: str, client_id: str, scope: str, username: str, password: str = PASSWORD, *,
              launch: str | None = None, patient_choice: str | None = None, approve: bool = True,
              redirect_uri: str = REDIRECT, **extra: str) -> tuple[dict[str, list[str]], str]:
    """Drive /auth/authorize through login (and picker) to consent: (redirect query, code_verifier)."""
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
              "state": secrets.token_hex(8), "aud": url, "code_challenge": challenge,
              "code_challenge_method": "S256", **extra}
    if launch:
        params["launch"] = launch
    with httpx.Client(base_url=url, timeout=60) as http:
        page = http.get("/auth/authorize", params=params)
        assert page.status_code == 200, page.text
        request_id = hidden(page.text, "request_id")
        page = http.post("/auth/authorize/login", data={"request_id": request_id, "username": username,
                                                        "password": password})
        assert page.status_code == 200, page.text
        if 'name="step" value="patient"' in page.text:
            choice = patient_choice or re.search(r'name="patient" value="([^"]+)"', page.text).group(1)
            page = http.post("/auth/authorize/consent", data={"request_id": request_id, "step": "patient",
                                                              "patient": choice})
            assert page.status_code == 200, page.text
        answer = http.post("/auth/authorize/consent", data={"request_id": request_id, "step": "consent",
                                                            "decision": "approve" if approve else "deny"})
    assert answer.status_code == 303, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == [params["state"]]
    return query, verifier


def exchange(url: str, client_id: str, code: str, verifier: str, secret: str | None = None,
             redirect_uri: str = REDIRECT) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier, "client_id": client_id}
    auth = (client_id, secret) if secret else None
    return HTTP.post(f"{url}/auth/token", data=data, auth=auth)


def user_token(url: str, settings: Settings, role: str, scope: str, fhir_user: str | None = None,
               app_scope: str | None = None, **kwargs: Any) -> dict:
    """A token response for a new `role` user through a new public app registered for `app_scope`."""
    account = create_user(settings, role, fhir_user)
    client_id, _ = register_app(settings, app_scope or scope)
    query, verifier = authorize(url, client_id, scope, account.username, **kwargs)
    response = exchange(url, client_id, query["code"][0], verifier)
    assert response.status_code == 200, response.text
    return response.json()
