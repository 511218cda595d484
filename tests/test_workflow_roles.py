"""Who may dispense and read a patient's record: the clinic's roles and SMART scopes, over real tokens."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient
from tests.smart import BearerAuth, user_token
from tests.test_dispense import days_from_now, dispense, prescription


def as_user(server: LiveServer, role: str, scope: str, fhir_user: str | None = None) -> httpx.Client:
    token = user_token(server.url, server.settings, role, scope, fhir_user)["access_token"]
    return httpx.Client(base_url=server.url, auth=BearerAuth(token), timeout=60, headers=fhir_headers())


@pytest.fixture
def data(server: LiveServer) -> dict:
    """Two patients, each with an active prescription allowing refills."""
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60, headers=fhir_headers()) as admin:
        made = {}
        for who in ("mine", "other"):
            patient_id = admin.post("/Patient", json=patient()).json()["id"]
            body = prescription(f"Patient/{patient_id}", refills=5, ends=days_from_now(30))
            made[who] = {"patient": patient_id, "request": admin.post("/MedicationRequest", json=body).json()["id"]}
        return made


@pytest.mark.parametrize("role", ["pharmacist", "doctor"])
def test_pharmacists_and_doctors_dispense(server: LiveServer, data: dict, role: str) -> None:
    with as_user(server, role, "user/*.cruds") as http:
        assert dispense(http, data["mine"]["request"]).status_code == 200


@pytest.mark.parametrize("role", ["nurse", "auditor"])
def test_other_staff_may_not_dispense(server: LiveServer, data: dict, role: str) -> None:
    with as_user(server, role, "user/*.cruds") as http:
        response = dispense(http, data["mine"]["request"])
        assert response.status_code == 403, response.text
        assert response.json()["resourceType"] == "OperationOutcome"


def test_a_patient_may_not_dispense_their_own_prescription(server: LiveServer, data: dict) -> None:
    mine = data["mine"]
    with as_user(server, "patient", "patient/*.rs", f"Patient/{mine['patient']}") as http:
        assert dispense(http, mine["request"]).status_code == 403


def test_a_scope_without_dispense_create_is_refused(server: LiveServer, data: dict) -> None:
    with as_user(server, "pharmacist", "user/MedicationRequest.rus") as http:
        assert dispense(http, data["mine"]["request"]).status_code == 403


def test_everything_shows_a_patient_only_their_own_record(server: LiveServer, data: dict) -> None:
    mine, other = data["mine"], data["other"]
    with as_user(server, "patient", "patient/*.rs", f"Patient/{mine['patient']}") as http:
        bundle = http.get(f"/Patient/{mine['patient']}/$everything").json()
        found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
        assert found == {("Patient", mine["patient"]), ("MedicationRequest", mine["request"])}
        assert http.get(f"/Patient/{other['patient']}/$everything").status_code == 404


def test_everything_leaves_out_types_the_scopes_do_not_reach(server: LiveServer, data: dict) -> None:
    mine = data["mine"]
    with as_user(server, "doctor", "user/Patient.rs") as http:
        bundle = http.get(f"/Patient/{mine['patient']}/$everything").json()
        assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Patient"]
        refused = http.get(f"/Patient/{mine['patient']}/$everything", params={"_type": "MedicationRequest"})
        assert refused.status_code == 403
