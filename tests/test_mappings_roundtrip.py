"""Domain -> FHIR -> domain is lossless for every record field, and the FHIR side is valid: R4 base
definitions and invariants, and the profiles each resource claims (the clinic's, R4 vital signs)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from fhir_server.validation import validate_resource
from fhir_server.validation.conformance import profile_issues
from mappings import patients, users
from mappings.domain import Patient, User
from tests.domain_records import patient_users, staff
from tests.domain_records import patients as patient_records

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_valid(resources: list[dict]) -> None:
    for resource in resources:
        issues = validate_resource(resource)
        claimed = resource.get("meta", {}).get("profile", [])
        issues += [i for i in profile_issues(resource, claimed, base=True) if i.severity in ("error", "fatal")]
        assert not issues, (resource, [i.to_json() for i in issues])


@SETTINGS
@given(staff | patient_users)
def test_user_round_trip(user: User) -> None:
    resources = users.to_fhir(user)
    expected = ["Patient"] if user.role == "patient" else ["Practitioner", "PractitionerRole"]
    assert [r["resourceType"] for r in resources] == expected
    assert_valid(resources)
    assert users.from_fhir(resources) == user


@SETTINGS
@given(patient_records)
def test_patient_record_round_trip(patient: Patient) -> None:
    resources = patients.to_fhir(patient)
    assert_valid(resources)
    assert patients.from_fhir(resources) == patient


@SETTINGS
@given(patient_records)
def test_every_resource_has_a_stable_identity(patient: Patient) -> None:
    first, again = patients.to_fhir(patient), patients.to_fhir(patient)
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert len({(r["resourceType"], r["id"]) for r in first}) == len(first)
    for resource in first:
        assert any(i["system"].startswith("https://medicalcycle.example/fhir/sid/") for i in resource["identifier"])


@SETTINGS
@given(patient_records)
def test_the_clinic_profiles_are_claimed(patient: Patient) -> None:
    claimed = {r["resourceType"]: r.get("meta", {}).get("profile") for r in patients.to_fhir(patient)}
    base = "https://medicalcycle.example/fhir/StructureDefinition/"
    assert claimed["Patient"] == [base + "mc-patient"]
    if patient.consultations:
        assert claimed["Encounter"] == [base + "mc-encounter"]
    if patient.prescriptions:
        assert claimed["MedicationRequest"] == [base + "mc-medicationrequest"]
