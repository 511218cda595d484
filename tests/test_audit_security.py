"""The audit trail and SMART together: who the caller is, security events, and the auditor's access."""

from __future__ import annotations

import time

import httpx
import pytest
from pymongo import MongoClient

from fhir_server.audit.balp import DCM, SECURITY_EVENT
from fhir_server.audit.collections import RESOURCE_TYPE
from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient
from tests.smart import (
    FULL_ACCESS,
    BackendAuth,
    BearerAuth,
    authorize,
    backend_token,
    create_user,
    register_app,
    register_backend_client,
    user_token,
)


@pytest.fixture(scope="module")
def events(server: LiveServer, mongodb_uri: str):
    client: MongoClient = MongoClient(mongodb_uri, tz_aware=True)
    yield client[server.settings.database_name][RESOURCE_TYPE]
    client.close()


def wait_for(collection, query: dict) -> list[dict]:
    deadline = time.monotonic() + 15
    while not (found := [d["res"] for d in collection.find(query)]):
        assert time.monotonic() < deadline, f"no AuditEvent matches {query}"
        time.sleep(0.1)
    return found


def test_a_users_read_names_the_user_the_token_and_the_app(server: LiveServer, events) -> None:
    with httpx.Client(base_url=server.url, auth=server.auth, headers=fhir_headers(), timeout=60) as admin:
        practitioner = admin.post("/Practitioner", json={"resourceType": "Practitioner"}).json()["id"]
        subject = admin.post("/Patient", json=patient()).json()["id"]
    token = user_token(server.url, server.settings, "doctor", "user/*.rs openid fhirUser",
                       fhir_user=f"Practitioner/{practitioner}")
    with httpx.Client(base_url=server.url, auth=BearerAuth(token["access_token"]), timeout=60) as doctor:
        response = doctor.get(f"/Patient/{subject}", headers={"X-Request-Id": f"audit-actor-{subject}"})
    assert response.status_code == 200
    event = wait_for(events, {"res.entity.what.identifier.value": f"audit-actor-{subject}"})[0]
    user = next(a for a in event["agent"] if a.get("requestor"))
    assert user["who"]["reference"] == f"Practitioner/{practitioner}"
    assert user["role"] == [{"text": "doctor"}]
    claims = httpx.post(f"{server.url}/auth/introspect", data={"token": token["access_token"]},
                        headers=server.headers()).json()
    assert user["policy"] == [claims["jti"]]
    app = next(a for a in event["agent"] if a["type"]["coding"][0]["code"] == "110153")
    assert app["who"]["identifier"]["value"] == claims["client_id"]


def test_logins_are_recorded_as_user_authentication(server: LiveServer, events) -> None:
    account = create_user(server.settings, "nurse")
    client_id, _ = register_app(server.settings, "user/*.rs")
    authorize(server.url, client_id, "user/*.rs", account.username)
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        page = browser.get("/auth/authorize", params={
            "response_type": "code", "client_id": client_id, "redirect_uri": "http://127.0.0.1:9/callback",
            "scope": "user/*.rs", "state": "s", "aud": server.url, "code_challenge": "x" * 43,
            "code_challenge_method": "S256"})
        request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
        browser.post("/auth/authorize/login", data={"request_id": request_id, "username": account.username,
                                                    "password": "wrong"})
    logins = wait_for(events, {"res.subtype.code": "110122", "res.agent.who.identifier.value": account.username})
    assert all(e["type"]["system"] == DCM and e["type"]["code"] == "110114" for e in logins)
    deadline = time.monotonic() + 15
    while {e["outcome"] for e in logins} != {"0", "4"} and time.monotonic() < deadline:
        time.sleep(0.1)
        logins = wait_for(events, {"res.subtype.code": "110122", "res.agent.who.identifier.value": account.username})
    assert {e["outcome"] for e in logins} == {"0", "4"}


def test_tokens_issued_and_refused_are_recorded(server: LiveServer, events) -> None:
    token = user_token(server.url, server.settings, "nurse", "user/Observation.rs")
    claims = httpx.post(f"{server.url}/auth/introspect", data={"token": token["access_token"]},
                        headers=server.headers()).json()
    issued = wait_for(events, {"res.subtype.code": "token-issued", "res.agent.policy": claims["jti"]})[0]
    assert issued["subtype"][0]["system"] == SECURITY_EVENT and issued["outcome"] == "0"
    refused = httpx.post(f"{server.url}/auth/token", data={"grant_type": "authorization_code", "code": "forged",
                                                           "client_id": claims["client_id"],
                                                           "redirect_uri": "http://127.0.0.1:9/callback",
                                                           "code_verifier": "v" * 43})
    assert refused.status_code == 400
    failure = wait_for(events, {"res.subtype.code": "token-refused",
                                "res.agent.who.identifier.value": claims["client_id"]})[0]
    assert failure["outcome"] == "4" and failure["outcomeDesc"]


def test_a_refused_request_is_recorded_once_with_its_reason(server: LiveServer, events) -> None:
    response = httpx.get(f"{server.url}/Patient", headers={"X-Request-Id": "audit-unauthenticated-1"})
    assert response.status_code == 401
    refused = wait_for(events, {"res.entity.what.identifier.value": "audit-unauthenticated-1"})
    assert len(refused) == 1 and refused[0]["outcome"] == "4" and refused[0]["outcomeDesc"]


def test_only_auditors_read_the_trail_and_their_reads_are_audited(server: LiveServer, events) -> None:
    doctor = user_token(server.url, server.settings, "doctor", "user/*.cruds")
    with httpx.Client(base_url=server.url, auth=BearerAuth(doctor["access_token"]), timeout=60) as http:
        assert http.get("/AuditEvent").status_code == 403
        assert http.get("/AuditEvent/$verify-chain").status_code == 403
    auditor = user_token(server.url, server.settings, "auditor", "user/AuditEvent.rs")
    with httpx.Client(base_url=server.url, auth=BearerAuth(auditor["access_token"]), timeout=60) as http:
        found = http.get("/AuditEvent", params={"_count": "5"}, headers={"X-Request-Id": "audit-review-1"})
        assert found.status_code == 200 and found.json()["resourceType"] == "Bundle"
        assert http.get("/AuditEvent/$export", params={"_since": "2000"}).status_code == 200
        for method in ("post", "put", "delete"):
            target = "/AuditEvent" if method == "post" else "/AuditEvent/x"
            kwargs = {"json": {"resourceType": "AuditEvent"}} if method != "delete" else {}
            assert getattr(http, method)(target, **kwargs).status_code in (403, 405)
    assert wait_for(events, {"res.entity.what.identifier.value": "audit-review-1"})
    with httpx.Client(base_url=server.url, auth=server.auth, headers=fhir_headers(), timeout=60) as admin:
        assert admin.post("/AuditEvent", json={"resourceType": "AuditEvent"}).status_code == 405
        assert admin.delete("/AuditEvent/x").status_code == 405


def test_a_wildcard_token_does_not_reach_the_trail(server: LiveServer) -> None:
    client_id, key = register_backend_client(server.settings, "system/*.cruds")
    auth = BackendAuth(server.url, client_id, key, "system/*.cruds system/AuditEvent.rs")
    with httpx.Client(base_url=server.url, auth=auth, headers=fhir_headers(), timeout=60) as http:
        assert http.get("/Patient", params={"_count": "1"}).status_code == 200
        assert http.get("/AuditEvent").status_code == 403
        assert http.get("/", params={"_type": "AuditEvent"}).status_code == 403
        assert http.get("/AuditEvent/$verify-chain").status_code == 403
        everything = http.get("/", params={"_count": "50"})
        assert everything.status_code == 200
        assert all(e["resource"]["resourceType"] != "AuditEvent" for e in everything.json().get("entry", []))
    assert backend_token(server.url, client_id, key, FULL_ACCESS).json()["scope"] == "system/*.cruds"
