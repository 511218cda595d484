"""Every token attack is refused with 401 + `WWW-Authenticate: Bearer`, and client assertions are
checked as Backend Services requires (replayed jti, long exp, wrong aud, foreign key)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient
from tests.smart import (
    ASSERTION_TYPE,
    HTTP,
    BearerAuth,
    backend_token,
    client_assertion,
    generate_key,
    register_backend_client,
    token_endpoint,
)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def target(server: LiveServer) -> str:
    response = HTTP.post(f"{server.url}/Patient", json=patient(), headers=fhir_headers(), auth=server.auth)
    return f"{server.url}/Patient/{response.json()['id']}"


@pytest.fixture(scope="module")
def genuine(server: LiveServer) -> dict:
    """The claims and header of a real token, to forge variations of."""
    token = server.auth.current()
    header, payload, _ = token.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    return {"header": json.loads(base64.urlsafe_b64decode(pad(header))),
            "claims": json.loads(base64.urlsafe_b64decode(pad(payload))), "token": token}


def _refused(url: str, token: str | None, reason: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = HTTP.get(url, headers=headers)
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"
    if reason:
        assert reason in challenge


def test_genuine_token_works(target: str, genuine: dict) -> None:
    assert HTTP.get(target, auth=BearerAuth(genuine["token"])).status_code == 200


def test_missing_token(target: str) -> None:
    _refused(target, None)
    assert HTTP.get(target, headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_alg_none(target: str, genuine: dict) -> None:
    _refused(target, f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(genuine['claims'])}.")


def test_hmac_with_the_public_key(server: LiveServer, target: str, genuine: dict) -> None:
    public = HTTP.get(f"{server.url}/auth/jwks").json()["keys"][0]
    key = OctKey.import_key(json.dumps(public).encode())
    forged = jwt.encode({"alg": "HS256", "kid": public["kid"]}, genuine["claims"], key, algorithms=["HS256"])
    _refused(target, forged)


def test_foreign_key(target: str, genuine: dict) -> None:
    foreign = RSAKey.generate_key(2048, parameters={"kid": genuine["header"]["kid"]}, private=True)
    _refused(target, jwt.encode(genuine["header"], genuine["claims"], foreign), "signature")
    other_kid = RSAKey.generate_key(2048, parameters={"kid": "someone-else"}, private=True)
    _refused(target, jwt.encode({"alg": "RS256", "kid": "someone-else"}, genuine["claims"], other_kid))


def test_tampered_claims(target: str, genuine: dict) -> None:
    header, _, signature = genuine["token"].split(".")
    widened = {**genuine["claims"], "scope": "system/*.cruds user/*.cruds"}
    _refused(target, f"{header}.{_b64(widened)}.{signature}")


def test_wrong_audience(make_server, target: str) -> None:
    other = make_server()  # a token of another server (another key, another aud)
    _refused(target, other.auth.current())


def test_expired(make_server) -> None:
    live = make_server(backend_token_seconds=1)
    created = HTTP.post(f"{live.url}/Patient", json=patient(), headers=fhir_headers(), auth=live.auth).json()
    token = live.auth.token
    time.sleep(32)  # past the 30 s allowed for clock skew
    _refused(f"{live.url}/Patient/{created['id']}", token, "expired")


def test_revoked(server: LiveServer, target: str) -> None:
    client_id, key = register_backend_client(server.settings, "system/Patient.rs")
    token = backend_token(server.url, client_id, key, "system/Patient.rs").json()["access_token"]
    assert HTTP.get(target, auth=BearerAuth(token)).status_code == 200
    HTTP.post(f"{server.url}/auth/revoke", data={"token": token}, auth=BearerAuth(token))
    _refused(target, token, "revoked")


def test_garbage(target: str) -> None:
    for token in ("garbage", "a.b.c", "e30.e30.e30"):
        _refused(target, token)


def _assertion_request(server: LiveServer, assertion: str) -> httpx.Response:
    return HTTP.post(f"{server.url}/auth/token", data={
        "grant_type": "client_credentials", "scope": "system/Patient.rs",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})


def test_replayed_assertion_jti(server: LiveServer) -> None:
    client_id, key = register_backend_client(server.settings, "system/Patient.rs")
    assertion = client_assertion(client_id, key, token_endpoint(server.url))
    assert _assertion_request(server, assertion).status_code == 200
    replay = _assertion_request(server, assertion)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    assert "jti" in replay.json()["error_description"]


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) + 3600},  # more than 5 minutes ahead
    {"exp": int(time.time()) - 10},  # expired
    {"aud": "https://elsewhere.example/token"},
    {"sub": "someone-else"},
    {"jti": ""},
])
def test_bad_assertion_claims(server: LiveServer, claims: dict) -> None:
    client_id, key = register_backend_client(server.settings, "system/Patient.rs")
    response = _assertion_request(server, client_assertion(client_id, key, token_endpoint(server.url), **claims))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_assertion_signed_by_another_key(server: LiveServer) -> None:
    client_id, _ = register_backend_client(server.settings, "system/Patient.rs")
    response = _assertion_request(server, client_assertion(client_id, generate_key(), token_endpoint(server.url)))
    assert response.status_code == 401


def test_assertion_algorithms_are_rs384_or_es384(server: LiveServer) -> None:
    client_id, _ = register_backend_client(server.settings, "system/Patient.rs")
    weak = RSAKey.generate_key(2048, parameters={"kid": "k"}, private=True)
    claims = {"iss": client_id, "sub": client_id, "aud": token_endpoint(server.url), "exp": int(time.time()) + 60,
              "jti": "j1"}
    response = _assertion_request(server, jwt.encode({"alg": "RS256", "kid": "k"}, claims, weak))
    assert response.status_code == 401


def test_public_clients_cannot_use_client_credentials(server: LiveServer) -> None:
    from tests.smart import register_app

    app, _ = register_app(server.settings, "system/*.rs")
    response = HTTP.post(f"{server.url}/auth/token", data={"grant_type": "client_credentials", "client_id": app})
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
