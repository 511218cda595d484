"""Profiles over HTTP: 422 on writes that break a claimed or required profile, `$validate`, the
published StructureDefinitions and the CapabilityStatement's supportedProfile."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.clinic_data import PROFILE, mc_encounter, mc_medication_request, mc_patient, mc_practitioner
from tests.conftest import LiveServer, start_live_server
from tests.fhir_data import FHIR_JSON, fhir_headers, patient, unique

CLINIC_PROFILES = ("mc-encounter", "mc-medicationrequest", "mc-patient", "mc-practitioner")


def post(client: httpx.Client, resource: dict, path: str | None = None) -> httpx.Response:
    return client.post(path or resource["resourceType"], json=resource, headers=fhir_headers())


def issues(response: httpx.Response) -> list[tuple[str, str, list[str]]]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return [(i["severity"], i["code"], i.get("expression", [])) for i in body["issue"]]


def errors(response: httpx.Response) -> list[tuple[str, list[str]]]:
    return [(code, where) for severity, code, where in issues(response) if severity == "error"]


def test_conforming_clinic_resources_are_created(client: httpx.Client) -> None:
    for make in (mc_patient, mc_practitioner, mc_encounter, mc_medication_request):
        response = post(client, make())
        assert response.status_code == 201, response.text


def test_a_write_breaking_its_claimed_profile_is_422_with_one_issue_per_violation(client: httpx.Client) -> None:
    request = mc_medication_request()
    del request["requester"]
    del request["dispenseRequest"]["validityPeriod"]
    request["medicationCodeableConcept"] = {"text": "amlodipine"}
    response = post(client, request)
    assert response.status_code == 422
    assert errors(response) == [
        ("required", ["MedicationRequest.medicationCodeableConcept.coding"]),
        ("required", ["MedicationRequest.requester"]),
        ("required", ["MedicationRequest.dispenseRequest.validityPeriod"]),
    ]


def test_update_and_patch_are_checked_too(client: httpx.Client) -> None:
    created = post(client, mc_patient()).json()
    broken = {**created, "gender": "woman"}
    response = client.put(f"Patient/{created['id']}", json=broken, headers=fhir_headers())
    assert response.status_code == 422
    assert errors(response) == [("code-invalid", ["Patient.gender"])]
    response = client.patch(f"Patient/{created['id']}", json=[{"op": "remove", "path": "/birthDate"}],
                            headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 422
    assert errors(response) == [("required", ["Patient.birthDate"])]
    assert client.get(f"Patient/{created['id']}").json()["meta"]["versionId"] == "1"


def test_an_unknown_claimed_profile_is_accepted(client: httpx.Client) -> None:
    resource = patient(meta={"profile": ["https://unknown.example/StructureDefinition/other"]})
    assert post(client, resource).status_code == 201


def test_unclaimed_profiles_are_not_enforced_by_default(client: httpx.Client) -> None:
    assert post(client, patient()).status_code == 201
    bare = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/p"}}
    assert post(client, bare).status_code == 201


@pytest.fixture(scope="module")
def strict_client(make_server: object) -> Iterator[httpx.Client]:
    server = make_server(required_profiles=frozenset({"MedicationRequest", "Patient"}))  # type: ignore[operator]
    with httpx.Client(base_url=server.url, auth=server.auth, headers={"Accept": FHIR_JSON}, timeout=60) as http:
        yield http


def test_required_profiles_are_enforced_without_being_claimed(strict_client: httpx.Client) -> None:
    unclaimed = patient()
    response = post(strict_client, unclaimed)
    assert response.status_code == 422
    assert errors(response) == [("required", ["Patient.identifier"])]
    conforming = mc_patient()
    del conforming["meta"]
    assert post(strict_client, conforming).status_code == 201
    bare = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/p"}}
    assert post(strict_client, bare).status_code == 422
    inpatient = mc_encounter()
    del inpatient["meta"]
    inpatient["class"]["code"] = "IMP"
    assert post(strict_client, inpatient).status_code == 201


def test_required_profiles_setting_rejects_unprofiled_types(make_server: object) -> None:
    with pytest.raises(ValueError, match="no clinic profile for Observation"):
        make_server(required_profiles=frozenset({"Observation"}))  # type: ignore[operator]


def test_validate_type_level_post_parameters(client: httpx.Client) -> None:
    request = mc_medication_request(dosageInstruction=[{"sequence": 1}])
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": request}, {"name": "mode", "valueCode": "create"}]}
    response = client.post("MedicationRequest/$validate", json=parameters, headers=fhir_headers())
    assert response.status_code == 200
    assert errors(response) == [("invariant", ["MedicationRequest"])]
    response = client.post("MedicationRequest/$validate", json=mc_medication_request(), headers=fhir_headers())
    assert response.status_code == 200
    assert errors(response) == []


def test_validate_with_a_profile_parameter(client: httpx.Client) -> None:
    plain = patient()
    response = client.post("Patient/$validate", json=plain, params={"profile": PROFILE + "mc-patient"},
                           headers=fhir_headers())
    assert response.status_code == 200
    assert errors(response) == [("required", ["Patient.identifier"])]
    response = client.post("Patient/$validate", json=plain, headers=fhir_headers())
    assert errors(response) == []
    response = client.post("Patient/$validate", json=plain, params={"profile": "https://nowhere.example/x"},
                           headers=fhir_headers())
    assert response.status_code == 400


def test_validate_reports_structure_bindings_and_base_invariants(client: httpx.Client) -> None:
    response = client.post("Patient/$validate", json=patient(gender="woman"), headers=fhir_headers())
    assert errors(response) == [("code-invalid", ["Patient.gender"])]
    response = client.post("Patient/$validate", json=patient(active="yes"), headers=fhir_headers())
    assert response.status_code == 200
    assert errors(response) == [("structure", ["Patient.active"])]


def test_validate_instance_level(client: httpx.Client) -> None:
    created = post(client, mc_patient()).json()
    response = client.get(f"Patient/{created['id']}/$validate")
    assert response.status_code == 200 and errors(response) == []
    other = {**created, "id": "another-id"}
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": other}, {"name": "mode", "valueCode": "update"}]}
    response = client.post(f"Patient/{created['id']}/$validate", json=parameters, headers=fhir_headers())
    assert errors(response) == [("invalid", ["Patient.id"])]
    response = client.get(f"Patient/{created['id']}/$validate", params={"mode": "delete"})
    assert response.status_code == 200
    assert issues(response)[0][0] == "information"
    assert client.get(f"Patient/{unique()}/$validate", params={"mode": "delete"}).status_code == 404


def test_validate_refuses_bad_parameters(client: httpx.Client) -> None:
    assert client.get("Patient/$validate").status_code == 400
    assert client.get("Patient/$validate", params={"mode": "destroy"}).status_code == 400
    response = client.post("Patient/$validate", json=mc_encounter(), headers=fhir_headers())
    assert response.status_code == 400


def test_profiles_are_published_and_listed(client: httpx.Client) -> None:
    for name in CLINIC_PROFILES:
        sd = client.get(f"StructureDefinition/{name}").json()
        assert sd["url"] == PROFILE + name
        assert sd["snapshot"]["element"] and sd["differential"]["element"]
    found = client.get("StructureDefinition", params={"url": PROFILE + "mc-patient"}).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == ["mc-patient"]
    guide = client.get("ImplementationGuide/medicalcycle").json()
    assert {r["reference"]["reference"] for r in guide["definition"]["resource"]
            if r["reference"]["reference"].startswith("StructureDefinition/")} == {
        f"StructureDefinition/{name}" for name in CLINIC_PROFILES}
    statement = client.get("metadata").json()
    supported = {r["type"]: r.get("supportedProfile") for r in statement["rest"][0]["resource"]}
    assert supported["MedicationRequest"] == [PROFILE + "mc-medicationrequest"]
    assert supported["Observation"] is None
    validate = [o for r in statement["rest"][0]["resource"] if r["type"] == "Patient" for o in r["operation"]]
    assert {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"} in validate


def test_publishing_is_idempotent(server: LiveServer) -> None:
    again = start_live_server(server.settings)
    try:
        with httpx.Client(base_url=again.url, auth=again.auth, headers={"Accept": FHIR_JSON}) as http:
            assert http.get("StructureDefinition/mc-patient").json()["meta"]["versionId"] == "1"
    finally:
        again.stop()


def test_transaction_entries_are_checked_and_nothing_is_written(client: httpx.Client) -> None:
    family = unique("Tx")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": mc_patient(name=[{"family": family}]), "request": {"method": "POST", "url": "Patient"}},
        {"resource": mc_encounter(subject={"reference": "Group/g1"}),
         "request": {"method": "POST", "url": "Encounter"}},
    ]}
    response = client.post("", json=bundle, headers=fhir_headers())
    assert response.status_code == 422
    assert errors(response) == [("structure", ["Bundle.entry[1]", "Encounter.subject"])]
    assert client.get("Patient", params={"family": family}).json().get("entry", []) == []
