"""SMART App Launch flows over real HTTP: discovery, standalone and EHR launch with PKCE, refresh
with rotation, Backend Services, introspection, revocation and the authorize endpoint's refusals."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient
from tests.smart import (
    HTTP,
    REDIRECT,
    BearerAuth,
    authorize,
    backend_token,
    create_user,
    exchange,
    pkce,
    register_app,
    register_backend_client,
    user_token,
)


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def patient_id(client: httpx.Client) -> str:
    return client.post("/Patient", json=patient(), headers=fhir_headers()).json()["id"]


def test_smart_configuration_has_every_required_field(server: LiveServer) -> None:
    response = HTTP.get(f"{server.url}/.well-known/smart-configuration", headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    config = response.json()
    for field in ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "grant_types_supported",
                  "token_endpoint_auth_methods_supported", "scopes_supported", "response_types_supported",
                  "capabilities", "code_challenge_methods_supported", "introspection_endpoint",
                  "revocation_endpoint"):
        assert field in config, field
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert {"authorization_code", "client_credentials", "refresh_token"} <= set(config["grant_types_supported"])
    assert config["token_endpoint"] == f"{server.url}/auth/token"
    openid = HTTP.get(f"{server.url}/.well-known/openid-configuration").json()
    assert openid["issuer"] == config["issuer"] and openid["jwks_uri"] == config["jwks_uri"]
    keys = HTTP.get(config["jwks_uri"]).json()["keys"]
    assert keys and all("d" not in key for key in keys)


def test_capability_statement_security_points_to_the_same_endpoints(server: LiveServer) -> None:
    statement = HTTP.get(f"{server.url}/metadata").json()  # open without a token
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    [oauth] = [e for e in security["extension"]
               if e["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"]
    urls = {e["url"]: e["valueUri"] for e in oauth["extension"]}
    config = HTTP.get(f"{server.url}/.well-known/smart-configuration").json()
    assert urls["token"] == config["token_endpoint"]
    assert urls["authorize"] == config["authorization_endpoint"]


def test_standalone_launch_with_pkce_then_fhir_access(server: LiveServer, patient_id: str) -> None:
    scope = "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs"
    body = user_token(server.url, server.settings, "patient", scope, fhir_user=f"Patient/{patient_id}")
    assert body["token_type"] == "Bearer" and body["patient"] == patient_id
    assert body["need_patient_banner"] is True
    assert 0 < body["expires_in"] <= 3600
    assert set(body["scope"].split()) == set(scope.split())
    assert body["refresh_token"] and _claims(body["id_token"])["fhirUser"] == f"Patient/{patient_id}"
    claims = _claims(body["access_token"])
    assert claims["aud"] == server.url and claims["jti"] and claims["patient"] == patient_id
    read = HTTP.get(f"{server.url}/Patient/{patient_id}", auth=BearerAuth(body["access_token"]))
    assert read.status_code == 200 and read.json()["id"] == patient_id


def test_token_response_is_not_cached(server: LiveServer) -> None:
    client_id, key = register_backend_client(server.settings, "system/Patient.rs")
    response = backend_token(server.url, client_id, key, "system/Patient.rs")
    assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"


def test_ehr_launch_carries_the_launch_context(server: LiveServer, client: httpx.Client, patient_id: str) -> None:
    encounter = client.post("/Encounter", headers=fhir_headers(), json={
        "resourceType": "Encounter", "status": "in-progress", "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{patient_id}"}}).json()["id"]
    ehr = user_token(server.url, server.settings, "admin", "user/*.cruds")
    launched = HTTP.post(f"{server.url}/auth/launch", json={"patient": patient_id, "encounter": encounter},
                          auth=BearerAuth(ehr["access_token"]))
    assert launched.status_code == 201, launched.text
    launch = launched.json()["launch"]
    doctor = create_user(server.settings, "doctor", "Practitioner/dr-1")
    app, _ = register_app(server.settings, "launch openid fhirUser patient/*.rs")
    query, verifier = authorize(server.url, app, "launch openid fhirUser patient/*.rs", doctor.username, launch=launch)
    body = exchange(server.url, app, query["code"][0], verifier).json()
    assert body["patient"] == patient_id and body["encounter"] == encounter
    assert body["need_patient_banner"] is False
    assert _claims(body["id_token"])["fhirUser"] == "Practitioner/dr-1"
    # The launch value is single use.
    verifier, challenge = pkce()
    again = HTTP.get(f"{server.url}/auth/authorize", params={
        "response_type": "code", "client_id": app, "redirect_uri": REDIRECT, "scope": "launch patient/*.rs",
        "state": "s1", "aud": server.url, "launch": launch, "code_challenge": challenge,
        "code_challenge_method": "S256"})
    assert again.status_code == 302
    assert parse_qs(urlsplit(again.headers["location"]).query)["error"] == ["invalid_request"]


def test_launch_creation_needs_an_ehr(server: LiveServer, patient_id: str) -> None:
    patient_app = user_token(server.url, server.settings, "patient", "patient/*.rs",
                             fhir_user=f"Patient/{patient_id}")
    refused = HTTP.post(f"{server.url}/auth/launch", json={"patient": patient_id},
                         auth=BearerAuth(patient_app["access_token"]))
    assert refused.status_code == 403
    assert HTTP.post(f"{server.url}/auth/launch", json={"patient": patient_id}).status_code == 401


def test_patient_picker_for_a_user_who_sees_several_patients(server: LiveServer, client: httpx.Client) -> None:
    ids = [client.post("/Patient", json=patient(), headers=fhir_headers()).json()["id"] for _ in range(2)]
    body = user_token(server.url, server.settings, "doctor", "launch/patient patient/*.rs", patient_choice=ids[1])
    assert body["patient"] == ids[1]


def test_refresh_rotates_and_never_widens(server: LiveServer, patient_id: str) -> None:
    scope = "offline_access patient/Patient.rs patient/Observation.rs"
    account = create_user(server.settings, "patient", f"Patient/{patient_id}")
    app, secret = register_app(server.settings, scope, public=False)
    query, verifier = authorize(server.url, app, scope, account.username)
    first = exchange(server.url, app, query["code"][0], verifier, secret).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
               "scope": "offline_access patient/Patient.cruds patient/Encounter.rs"}
    second = HTTP.post(f"{server.url}/auth/token", data=refresh, auth=(app, secret))
    assert second.status_code == 200, second.text
    assert second.json()["scope"] == "offline_access patient/Patient.rs"
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = HTTP.post(f"{server.url}/auth/token", data=refresh, auth=(app, secret))
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # A refresh token is bound to its client.
    other, other_secret = register_app(server.settings, scope, public=False)
    stolen = HTTP.post(f"{server.url}/auth/token", auth=(other, other_secret), data={
        "grant_type": "refresh_token", "refresh_token": second.json()["refresh_token"]})
    assert stolen.json()["error"] == "invalid_grant"


def test_authorization_code_is_single_use_and_needs_the_verifier(server: LiveServer, patient_id: str) -> None:
    account = create_user(server.settings, "patient", f"Patient/{patient_id}")
    app, _ = register_app(server.settings, "patient/*.rs")
    query, verifier = authorize(server.url, app, "patient/*.rs", account.username)
    wrong = exchange(server.url, app, query["code"][0], "x" * 50)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    query, verifier = authorize(server.url, app, "patient/*.rs", account.username)
    assert exchange(server.url, app, query["code"][0], verifier).status_code == 200
    assert exchange(server.url, app, query["code"][0], verifier).json()["error"] == "invalid_grant"


def _authorize_params(server: LiveServer, app: str, **overrides: str) -> dict:
    _, challenge = pkce()
    params = {"response_type": "code", "client_id": app, "redirect_uri": REDIRECT, "scope": "patient/*.rs",
              "state": "abc", "aud": server.url, "code_challenge": challenge, "code_challenge_method": "S256"}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


@pytest.mark.parametrize(("overrides", "error"), [
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
    ({"aud": "https://elsewhere.example/fhir"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"launch": "never-issued"}, "invalid_request"),
])
def test_authorize_errors_go_back_to_the_redirect_uri_with_state(server: LiveServer, overrides: dict,
                                                                 error: str) -> None:
    app, _ = register_app(server.settings, "patient/*.rs")
    response = HTTP.get(f"{server.url}/auth/authorize", params=_authorize_params(server, app, **overrides))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == [error] and query["state"] == ["abc"]


def test_untrusted_redirect_uri_errors_are_shown_on_the_page(server: LiveServer) -> None:
    app, _ = register_app(server.settings, "patient/*.rs")
    wrong = HTTP.get(f"{server.url}/auth/authorize",
                      params=_authorize_params(server, app, redirect_uri="https://evil.example/cb"))
    assert wrong.status_code == 400 and "location" not in wrong.headers
    assert "redirect_uri is not registered" in wrong.text
    unknown = HTTP.get(f"{server.url}/auth/authorize", params=_authorize_params(server, "no-such-client"))
    assert unknown.status_code == 400 and "Unknown" in unknown.text


def test_authorize_accepts_post(server: LiveServer) -> None:
    app, _ = register_app(server.settings, "patient/*.rs")
    response = HTTP.post(f"{server.url}/auth/authorize", data=_authorize_params(server, app))
    assert response.status_code == 200 and 'name="password"' in response.text


def test_denied_consent_returns_access_denied(server: LiveServer, patient_id: str) -> None:
    account = create_user(server.settings, "patient", f"Patient/{patient_id}")
    app, _ = register_app(server.settings, "patient/*.rs")
    query, _ = authorize(server.url, app, "patient/*.rs", account.username, approve=False)
    assert query["error"] == ["access_denied"]


def test_login_lockout_after_repeated_failures(server: LiveServer) -> None:
    account = create_user(server.settings, "nurse")
    app, _ = register_app(server.settings, "user/*.rs")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        page = http.get("/auth/authorize", params=_authorize_params(server, app, scope="user/*.rs"))
        request_id = page.text.split('name="request_id" value="')[1].split('"')[0]

        def attempt(password: str) -> httpx.Response:
            return http.post("/auth/authorize/login", data={"request_id": request_id, "username": account.username,
                                                            "password": password})

        for _ in range(server.settings.login_max_failures):
            assert attempt("wrong password!").status_code == 401
        locked = attempt("correct horse battery staple")
        assert locked.status_code == 401 and "locked" in locked.text


def test_backend_services_token(server: LiveServer, patient_id: str) -> None:
    client_id, key = register_backend_client(server.settings, "system/Patient.rs system/Observation.rs", "RS384")
    response = backend_token(server.url, client_id, key, "system/Patient.rs system/Encounter.rs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "system/Patient.rs" and body["expires_in"] == 300
    assert "refresh_token" not in body
    auth = BearerAuth(body["access_token"])
    assert HTTP.get(f"{server.url}/Patient/{patient_id}", auth=auth).status_code == 200
    denied = HTTP.post(f"{server.url}/Patient", json=patient(), headers=fhir_headers(), auth=auth)
    assert denied.status_code == 403 and denied.json()["resourceType"] == "OperationOutcome"


def test_backend_services_with_jwks_url(server: LiveServer, make_server) -> None:
    holder = make_server()  # serves the client's JWKS: any HTTP server reachable by URL would do
    client_id, key = register_backend_client(server.settings, "system/Patient.rs",
                                             jwks_url=f"{holder.url}/auth/jwks")
    # The URL publishes the holder's keys, not this client's: the assertion must not verify.
    refused = backend_token(server.url, client_id, key, "system/Patient.rs")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_introspection_and_revocation(server: LiveServer, patient_id: str) -> None:
    client_id, key = register_backend_client(server.settings, "system/Patient.rs")
    token = backend_token(server.url, client_id, key, "system/Patient.rs").json()["access_token"]
    caller = server.headers()
    active = HTTP.post(f"{server.url}/auth/introspect", data={"token": token}, headers=caller).json()
    assert active["active"] is True and active["scope"] == "system/Patient.rs"
    assert active["client_id"] == client_id and active["exp"] > 0 and active["token_type"] == "Bearer"
    assert HTTP.post(f"{server.url}/auth/introspect", data={"token": "nonsense"}, headers=caller).json() == {
        "active": False}
    assert HTTP.post(f"{server.url}/auth/introspect", data={"token": token}).status_code == 401
    # The owner revokes it (RFC 7009, authenticating with its bearer token); it stops working at once.
    revoked = HTTP.post(f"{server.url}/auth/revoke", data={"token": token}, auth=BearerAuth(token))
    assert revoked.status_code == 200
    assert HTTP.post(f"{server.url}/auth/introspect", data={"token": token}, headers=caller).json() == {
        "active": False}
    refused = HTTP.get(f"{server.url}/Patient/{patient_id}", auth=BearerAuth(token))
    assert refused.status_code == 401 and "revoked" in refused.headers["www-authenticate"]


def test_revoking_a_refresh_token(server: LiveServer, patient_id: str) -> None:
    scope = "offline_access patient/*.rs"
    account = create_user(server.settings, "patient", f"Patient/{patient_id}")
    app, _ = register_app(server.settings, scope)
    query, verifier = authorize(server.url, app, scope, account.username)
    body = exchange(server.url, app, query["code"][0], verifier).json()
    assert HTTP.post(f"{server.url}/auth/revoke", data={"token": body["refresh_token"],
                                                         "client_id": app}).status_code == 200
    refreshed = HTTP.post(f"{server.url}/auth/token", data={"grant_type": "refresh_token", "client_id": app,
                                                             "refresh_token": body["refresh_token"]})
    assert refreshed.json()["error"] == "invalid_grant"


def test_dynamic_registration_is_for_admins(server: LiveServer) -> None:
    metadata = {"redirect_uris": ["https://app.example/cb"], "scope": "patient/*.rs launch/patient",
                "token_endpoint_auth_method": "none", "client_name": "Registered"}
    admin = user_token(server.url, server.settings, "admin", "user/*.rs")
    created = HTTP.post(f"{server.url}/auth/register", json=metadata, auth=BearerAuth(admin["access_token"]))
    assert created.status_code == 201, created.text
    assert created.json()["client_id"] and created.json()["token_endpoint_auth_method"] == "none"
    doctor = user_token(server.url, server.settings, "doctor", "user/*.rs")
    assert HTTP.post(f"{server.url}/auth/register", json=metadata,
                      auth=BearerAuth(doctor["access_token"])).status_code == 403
    bad = HTTP.post(f"{server.url}/auth/register", json={**metadata, "redirect_uris": ["http://evil.example/"]},
                     auth=BearerAuth(admin["access_token"]))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client_metadata"


def test_cors(make_server) -> None:
    live = make_server(cors_origins=("https://app.example",))
    preflight = HTTP.options(f"{live.url}/Patient", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    other = HTTP.get(f"{live.url}/Patient", headers={"Origin": "https://evil.example"}, auth=live.auth)
    assert "access-control-allow-origin" not in other.headers
    metadata = HTTP.get(f"{live.url}/metadata", headers={"Origin": "https://evil.example"})
    assert metadata.headers["access-control-allow-origin"] == "*"
