"""SMART flows driven by the real Python client `fhirclient` (it finds the OAuth endpoints in the
CapabilityStatement, sends PKCE S256 and `aud`, exchanges and refreshes tokens)."""

from __future__ import annotations

import httpx
import pytest
from fhirclient import client as smart_client
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient
from tests.smart import HTTP, REDIRECT, client_assertion, create_user, hidden, register_app, register_backend_client


@pytest.fixture(scope="module")
def patient_id(server: LiveServer) -> str:
    return HTTP.post(f"{server.url}/Patient", json=patient(), headers=fhir_headers(), auth=server.auth).json()["id"]


def _sign_in(authorize_url: str, username: str) -> str:
    """What the user does in the browser: sign in and allow; returns the redirect back to the app."""
    with httpx.Client(timeout=60) as http:
        page = http.get(authorize_url)
        assert page.status_code == 200, page.text
        request_id = hidden(page.text, "request_id")
        base = authorize_url.split("/auth/authorize")[0]
        http.post(f"{base}/auth/authorize/login", data={"request_id": request_id, "username": username,
                                                        "password": "correct horse battery staple"})
        answer = http.post(f"{base}/auth/authorize/consent", data={"request_id": request_id, "step": "consent",
                                                                  "decision": "approve"})
    assert answer.status_code == 303
    return answer.headers["location"]


def test_standalone_launch_read_and_refresh(server: LiveServer, patient_id: str) -> None:
    scope = "openid fhirUser offline_access patient/*.rs"
    account = create_user(server.settings, "patient", f"Patient/{patient_id}")
    app, secret = register_app(server.settings, f"launch/patient {scope}", public=False)
    smart = smart_client.FHIRClient(settings={"app_id": app, "app_secret": secret, "api_base": server.url,
                                              "redirect_uri": REDIRECT, "scope": scope})
    assert not smart.ready
    smart.prepare()
    url = smart.authorize_url
    assert url.startswith(f"{server.url}/auth/authorize") and "code_challenge_method=S256" in url
    smart.handle_callback(_sign_in(url, account.username))
    assert smart.ready and smart.patient_id == patient_id
    assert Patient.read(patient_id, smart.server).id == patient_id
    first = smart.server.auth.access_token
    assert smart.reauthorize()
    assert smart.server.auth.access_token != first
    assert Patient.read(patient_id, smart.server).id == patient_id


def test_ehr_launch(server: LiveServer, patient_id: str) -> None:
    launch = HTTP.post(f"{server.url}/auth/launch", json={"patient": patient_id}, auth=server.auth).json()["launch"]
    doctor = create_user(server.settings, "doctor", "Practitioner/dr-fc")
    app, _ = register_app(server.settings, "launch patient/*.rs")
    smart = smart_client.FHIRClient(settings={"app_id": app, "api_base": server.url, "redirect_uri": REDIRECT,
                                              "scope": "patient/*.rs", "launch_token": launch})
    smart.prepare()
    smart.handle_callback(_sign_in(smart.authorize_url, doctor.username))
    assert smart.patient_id == patient_id
    assert smart.launch_context["need_patient_banner"] is False
    assert Patient.read(patient_id, smart.server).id == patient_id


def test_backend_services(server: LiveServer, patient_id: str) -> None:
    client_id, key = register_backend_client(server.settings, "system/Patient.rs system/Observation.cruds")
    token_url = HTTP.get(f"{server.url}/.well-known/smart-configuration").json()["token_endpoint"]
    smart = smart_client.FHIRClient(settings={
        "app_id": client_id, "api_base": server.url, "scope": "system/Patient.rs system/Observation.cruds",
        "jwt_token": client_assertion(client_id, key, token_url)})
    smart.prepare()
    smart.authorize()
    assert smart.ready
    assert Patient.read(patient_id, smart.server).id == patient_id
    observation = Observation({"status": "final", "code": {"text": "weight"},
                               "subject": {"reference": f"Patient/{patient_id}"}})
    created = observation.create(smart.server)
    assert created["resourceType"] == "Observation"
