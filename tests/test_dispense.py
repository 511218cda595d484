"""`MedicationRequest/[id]/$dispense`: refill counting, expiry, status, concurrency, and the expiry sweep."""

from __future__ import annotations

import concurrent.futures
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pymongo import MongoClient

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient

MEDICATION = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314077"}]}


def prescription(subject: str, *, refills: int | None, ends: str, status: str = "active") -> dict:
    dispense_request: dict = {"validityPeriod": {"start": "2026-01-01", "end": ends},
                              "quantity": {"value": 30, "unit": "tablet"}}
    if refills is not None:
        dispense_request["numberOfRepeatsAllowed"] = refills
    return {"resourceType": "MedicationRequest", "status": status, "intent": "order",
            "medicationCodeableConcept": MEDICATION, "subject": {"reference": subject},
            "dosageInstruction": [{"text": "one tablet a day"}], "dispenseRequest": dispense_request}


def days_from_now(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def dispense_parameters(quantity: float = 30, days: int = 30) -> dict:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "quantity", "valueQuantity": {"value": quantity, "unit": "tablet"}},
        {"name": "daysSupply", "valueQuantity": {"value": days, "unit": "d", "system": "http://unitsofmeasure.org",
                                                 "code": "d"}}]}


@pytest.fixture(scope="module")
def workflow_server(make_server) -> LiveServer:
    """A server of its own (its database holds only these tests' dispenses), with no expiry sweep."""
    return make_server(prescription_sweep_seconds=0)


@pytest.fixture
def http(workflow_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=workflow_server.url, auth=workflow_server.auth,
                      headers={"Accept": "application/fhir+json"}, timeout=60) as c:
        yield c


def create(http: httpx.Client, **fields) -> dict:
    subject = http.post("/Patient", json=patient(), headers=fhir_headers()).json()
    response = http.post("/MedicationRequest", json=prescription(f"Patient/{subject['id']}", **fields),
                         headers=fhir_headers())
    assert response.status_code == 201, response.text
    return response.json()


def dispense(http: httpx.Client, request_id: str, **headers: str) -> httpx.Response:
    return http.post(f"/MedicationRequest/{request_id}/$dispense", json=dispense_parameters(),
                     headers=fhir_headers(**headers))


def dispenses_of(http: httpx.Client, request_id: str) -> list[dict]:
    history = http.get("/MedicationDispense/_history", params={"_count": "1000"}).json()
    found = {e["resource"]["id"]: e["resource"] for e in history.get("entry", []) if "resource" in e}
    return [d for d in found.values()
            if d["authorizingPrescription"] == [{"reference": f"MedicationRequest/{request_id}"}]]


def refusal(response: httpx.Response) -> dict:
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome["issue"][0]


def test_refills_allow_one_dispense_more_and_the_last_completes_the_request(http: httpx.Client) -> None:
    request = create(http, refills=2, ends=days_from_now(30))
    for expected_status in ("active", "active", "completed"):
        response = dispense(http, request["id"])
        assert response.status_code == 200, response.text
        parameters = {p["name"]: p["resource"] for p in response.json()["parameter"]}
        record = parameters["dispense"]
        assert record["status"] == "completed"
        assert record["authorizingPrescription"] == [{"reference": f"MedicationRequest/{request['id']}"}]
        assert record["quantity"]["value"] == 30 and record["daysSupply"]["value"] == 30
        assert record["subject"] == request["subject"]
        assert record["medicationCodeableConcept"] == MEDICATION
        assert parameters["prescription"]["status"] == expected_status
        assert http.get(f"/MedicationDispense/{record['id']}").status_code == 200
    issue = refusal(dispense(http, request["id"]))
    assert "completed" in issue["diagnostics"]
    assert len(dispenses_of(http, request["id"])) == 3
    assert http.get(f"/MedicationRequest/{request['id']}").json()["status"] == "completed"


def test_without_refills_one_dispense_completes_the_request(http: httpx.Client) -> None:
    request = create(http, refills=None, ends=days_from_now(30))
    assert dispense(http, request["id"]).status_code == 200
    assert http.get(f"/MedicationRequest/{request['id']}").json()["status"] == "completed"


def test_dispenses_already_recorded_use_up_refills(http: httpx.Client) -> None:
    request = create(http, refills=1, ends=days_from_now(30))
    earlier = {"resourceType": "MedicationDispense", "status": "completed", "medicationCodeableConcept": MEDICATION,
               "authorizingPrescription": [{"reference": f"MedicationRequest/{request['id']}"}]}
    assert http.post("/MedicationDispense", json=earlier, headers=fhir_headers()).status_code == 201
    cancelled = {**earlier, "status": "cancelled"}
    assert http.post("/MedicationDispense", json=cancelled, headers=fhir_headers()).status_code == 201
    response = dispense(http, request["id"])
    assert response.status_code == 200
    assert response.json()["parameter"][1]["resource"]["status"] == "completed"


def test_an_expired_prescription_is_refused_and_unchanged(http: httpx.Client) -> None:
    request = create(http, refills=3, ends=days_from_now(-1))
    issue = refusal(dispense(http, request["id"]))
    assert issue["code"] == "business-rule"
    assert issue["expression"] == ["MedicationRequest.dispenseRequest.validityPeriod.end"]
    assert http.get(f"/MedicationRequest/{request['id']}").json()["meta"]["versionId"] == "1"
    assert dispenses_of(http, request["id"]) == []


def test_a_prescription_valid_through_today_can_be_dispensed(http: httpx.Client) -> None:
    request = create(http, refills=0, ends=days_from_now(0))
    assert dispense(http, request["id"]).status_code == 200


@pytest.mark.parametrize("status", ["on-hold", "cancelled", "stopped", "draft"])
def test_a_request_that_is_not_active_is_refused(http: httpx.Client, status: str) -> None:
    request = create(http, refills=3, ends=days_from_now(30), status=status)
    issue = refusal(dispense(http, request["id"]))
    assert issue["expression"] == ["MedicationRequest.status"]
    assert dispenses_of(http, request["id"]) == []


def test_concurrent_dispenses_of_the_last_refill_exactly_one_succeeds(workflow_server: LiveServer,
                                                                       http: httpx.Client) -> None:
    racers = 4
    for _ in range(2):
        request = create(http, refills=1, ends=days_from_now(30))
        assert dispense(http, request["id"]).status_code == 200

        def attempt(_: int, request_id: str = request["id"]) -> int:
            with httpx.Client(base_url=workflow_server.url, auth=workflow_server.auth, timeout=60) as own:
                return dispense(own, request_id).status_code

        with concurrent.futures.ThreadPoolExecutor(racers) as pool:
            statuses = sorted(pool.map(attempt, range(racers)))
        assert statuses == [200] + [422] * (racers - 1)
        assert len(dispenses_of(http, request["id"])) == 2
        assert http.get(f"/MedicationRequest/{request['id']}").json()["status"] == "completed"


def test_if_match_names_the_expected_version(http: httpx.Client) -> None:
    request = create(http, refills=2, ends=days_from_now(30))
    assert dispense(http, request["id"], **{"If-Match": 'W/"7"'}).status_code == 412
    assert dispense(http, request["id"], **{"If-Match": 'W/"1"'}).status_code == 200
    assert len(dispenses_of(http, request["id"])) == 1


def test_bad_invocations(http: httpx.Client) -> None:
    request = create(http, refills=2, ends=days_from_now(30))
    url = f"/MedicationRequest/{request['id']}/$dispense"
    assert http.get(url).status_code == 405
    unknown = {"resourceType": "Parameters", "parameter": [{"name": "colour", "valueString": "red"}]}
    assert http.post(url, json=unknown, headers=fhir_headers()).status_code == 400
    mistyped = {"resourceType": "Parameters", "parameter": [{"name": "quantity", "valueString": "30"}]}
    assert http.post(url, json=mistyped, headers=fhir_headers()).status_code == 400
    assert http.post("/MedicationRequest/nope/$dispense", json=dispense_parameters(),
                     headers=fhir_headers()).status_code == 404
    assert http.post(f"/Patient/{request['id']}/$dispense", headers=fhir_headers()).status_code == 404
    assert dispenses_of(http, request["id"]) == []
    assert http.get(f"/MedicationRequest/{request['id']}").json()["meta"]["versionId"] == "1"


def test_the_capability_statement_lists_dispense(http: httpx.Client) -> None:
    statement = http.get("/metadata").json()
    resource = next(r for r in statement["rest"][0]["resource"] if r["type"] == "MedicationRequest")
    assert {"name": "dispense",
            "definition": "https://medicalcycle.example/fhir/OperationDefinition/MedicationRequest-dispense"
            } in resource["operation"]


def test_the_sweep_stops_expired_prescriptions(make_server) -> None:
    server = make_server(prescription_sweep_seconds=1)
    with httpx.Client(base_url=server.url, auth=server.auth, headers={"Accept": "application/fhir+json"},
                      timeout=60) as c:
        expired = create(c, refills=1, ends=days_from_now(-1))
        valid = create(c, refills=1, ends=days_from_now(1))
        deadline = time.monotonic() + 30
        while c.get(f"/MedicationRequest/{expired['id']}").json()["status"] != "stopped":
            assert time.monotonic() < deadline, "the sweep did not stop the expired prescription"
            time.sleep(0.2)
        stopped = c.get(f"/MedicationRequest/{expired['id']}").json()
        assert stopped["statusReason"]["text"].startswith("Expired")
        assert c.get(f"/MedicationRequest/{valid['id']}").json()["status"] == "active"
        ids = f"{expired['id']},{valid['id']}"
        stopped_ids = [e["resource"]["id"] for e in c.get("/MedicationRequest", params={
            "_id": ids, "status": "stopped"}).json().get("entry", [])]
        active_ids = [e["resource"]["id"] for e in c.get("/MedicationRequest", params={
            "_id": ids, "status": "active"}).json().get("entry", [])]
        assert (stopped_ids, active_ids) == ([expired["id"]], [valid["id"]])
        assert refusal(dispense(c, expired["id"]))["expression"] == ["MedicationRequest.status"]


def test_the_sweeps_changes_are_on_the_audit_trail(make_server, mongodb_uri: str) -> None:
    server = make_server(prescription_sweep_seconds=1)
    with httpx.Client(base_url=server.url, auth=server.auth, headers={"Accept": "application/fhir+json"},
                      timeout=60) as c:
        expired = create(c, refills=0, ends=days_from_now(-1))
    events = MongoClient(mongodb_uri)[server.settings.database_name]["AuditEvent"]
    deadline = time.monotonic() + 30
    query = {"res.entity.what.reference": f"MedicationRequest/{expired['id']}/_history/2"}
    while (event := events.find_one(query)) is None:
        assert time.monotonic() < deadline, "the sweep's update was not audited"
        time.sleep(0.2)
    user = event["res"]["agent"][0]
    assert event["res"]["action"] == "U" and user["who"]["identifier"]["value"] == "system:prescription-expiry"


def test_a_contained_medication_travels_with_the_dispense(http: httpx.Client) -> None:
    subject = http.post("/Patient", json=patient(), headers=fhir_headers()).json()
    body = prescription(f"Patient/{subject['id']}", refills=0, ends=days_from_now(5))
    del body["medicationCodeableConcept"]
    body["contained"] = [{"resourceType": "Medication", "id": "med", "code": MEDICATION}]
    body["medicationReference"] = {"reference": "#med"}
    request = http.post("/MedicationRequest", json=body, headers=fhir_headers()).json()
    response = dispense(http, request["id"])
    assert response.status_code == 200, response.text
    record = response.json()["parameter"][0]["resource"]
    assert record["medicationReference"] == {"reference": "#med"}
    assert record["contained"] == body["contained"]
