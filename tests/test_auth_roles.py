"""Role ceilings: a user's token never exceeds request ∩ client registration ∩ role, for all six roles."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient
from tests.smart import BearerAuth, user_token


@pytest.fixture(scope="module")
def data(server: LiveServer) -> dict:
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60, headers=fhir_headers()) as admin:
        patient_id = admin.post("/Patient", json=patient()).json()["id"]
        subject = {"reference": f"Patient/{patient_id}"}
        code = {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}
        return {
            "patient": patient_id,
            "other_patient": admin.post("/Patient", json=patient()).json()["id"],
            "observation": admin.post("/Observation", json={"resourceType": "Observation", "status": "final",
                                                            "code": code, "subject": subject}).json()["id"],
            "procedure": admin.post("/Procedure", json={"resourceType": "Procedure", "status": "completed",
                                                        "subject": subject}).json()["id"],
            "request": admin.post("/MedicationRequest", json={
                "resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": subject,
                "medicationCodeableConcept": {"text": "aspirin"}}).json()["id"],
        }


def _http(server: LiveServer, role: str, scope: str, **kwargs: object) -> tuple[httpx.Client, str]:
    body = user_token(server.url, server.settings, role, scope, **kwargs)
    return httpx.Client(base_url=server.url, auth=BearerAuth(body["access_token"]), timeout=60,
                        headers=fhir_headers()), body["scope"]


def _observation(patient_id: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "note"},
            "subject": {"reference": f"Patient/{patient_id}"}}


def _verify_chain(http: httpx.Client) -> int:
    return http.get("/AuditEvent/$verify-chain").status_code


def test_admin_reaches_everything_but_the_audit_trail(server: LiveServer, data: dict) -> None:
    http, scope = _http(server, "admin", "user/*.cruds user/AuditEvent.rs",
                        app_scope="user/*.cruds user/AuditEvent.rs")
    assert scope == "user/*.cruds"
    created = http.post("/Patient", json=patient())
    assert created.status_code == 201
    assert http.delete(f"/Patient/{created.json()['id']}").status_code == 204
    assert _verify_chain(http) == 403
    assert http.get("/AuditEvent").status_code == 403


def test_doctor_writes_clinical_data_but_not_the_audit_trail(server: LiveServer, data: dict) -> None:
    http, scope = _http(server, "doctor", "user/*.cruds")
    assert scope == "user/*.cruds"
    assert http.post("/Observation", json=_observation(data["patient"])).status_code == 201
    assert http.get(f"/Procedure/{data['procedure']}").status_code == 200
    assert _verify_chain(http) == 403


def test_nurse_reads_all_and_writes_observations_only(server: LiveServer, data: dict) -> None:
    http, scope = _http(server, "nurse", "user/*.cruds")
    assert "user/*.rs" in scope.split() and "user/Observation.cu" in scope.split()
    assert "user/*.cruds" not in scope
    assert http.get(f"/Patient/{data['patient']}").status_code == 200
    assert http.post("/Observation", json=_observation(data["patient"])).status_code == 201
    assert http.post("/Patient", json=patient()).status_code == 403
    assert http.delete(f"/Observation/{data['observation']}").status_code == 403
    assert _verify_chain(http) == 403


def test_pharmacist_reads_medication_data_and_dispenses(server: LiveServer, data: dict) -> None:
    http, scope = _http(server, "pharmacist", "user/*.cruds")
    assert "user/MedicationDispense.cud" in scope.split()
    assert http.get(f"/MedicationRequest/{data['request']}").status_code == 200
    assert http.get(f"/Observation/{data['observation']}").status_code == 200
    assert http.get(f"/Procedure/{data['procedure']}").status_code == 403
    dispense = {"resourceType": "MedicationDispense", "status": "completed",
                "medicationCodeableConcept": {"text": "aspirin"},
                "subject": {"reference": f"Patient/{data['patient']}"}}
    assert http.post("/MedicationDispense", json=dispense).status_code == 201
    assert http.post("/Observation", json=_observation(data["patient"])).status_code == 403


def test_patient_sees_only_their_own_compartment(server: LiveServer, data: dict) -> None:
    http, scope = _http(server, "patient", "patient/*.cruds user/*.cruds", fhir_user=f"Patient/{data['patient']}",
                        app_scope="patient/*.cruds user/*.cruds")
    assert set(scope.split()) == {"patient/*.rs", "patient/QuestionnaireResponse.cru", "patient/Observation.cu"}
    assert http.get(f"/Patient/{data['patient']}").status_code == 200
    assert http.get(f"/Observation/{data['observation']}").status_code == 200
    assert http.get(f"/Patient/{data['other_patient']}").status_code == 404
    assert http.post("/Observation", json=_observation(data["patient"])).status_code == 201
    assert http.post("/Observation", json=_observation(data["other_patient"])).status_code == 403
    assert http.delete(f"/Observation/{data['observation']}").status_code == 403
    assert _verify_chain(http) == 403


def test_auditor_reads_audit_events_only(server: LiveServer, data: dict) -> None:
    http, scope = _http(server, "auditor", "user/*.cruds", app_scope="user/*.cruds user/AuditEvent.rs")
    assert scope == "user/AuditEvent.rs"
    assert _verify_chain(http) == 200
    assert http.get("/AuditEvent", params={"_count": "1"}).status_code == 200
    assert http.get(f"/Patient/{data['patient']}").status_code == 403
    assert http.post("/Patient", json=patient()).status_code == 403


def test_client_registration_caps_the_grant(server: LiveServer, data: dict) -> None:
    http, scope = _http(server, "admin", "user/*.cruds", app_scope="user/Patient.rs")
    assert scope == "user/Patient.rs"
    assert http.get(f"/Patient/{data['patient']}").status_code == 200
    assert http.get(f"/Observation/{data['observation']}").status_code == 403


def test_write_does_not_imply_read(server: LiveServer, data: dict) -> None:
    http, scope = _http(server, "doctor", "user/Observation.c")
    assert scope == "user/Observation.c"
    created = http.post("/Observation", json=_observation(data["patient"]))
    assert created.status_code == 201
    assert http.get(f"/Observation/{created.json()['id']}").status_code == 403
