"""The profile validator, called directly: official examples against the base definitions, and
hand-made violations of each rule kind against the clinic's profiles and the R4 base."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from fhir_server.definitions import structure_definitions_by_url
from fhir_server.validation.conformance import profile_issues
from fhir_server.validation.invariants import UNEVALUATED
from fhir_server.validation.profile import validate_against, validate_profile
from fhir_server.validation.profile_definitions import clinic_profiles, compile_definition, definition
from fhir_server.validation.publish import shipped_resources
from fhir_server.validation.structure import validate_structure
from profiles import implementation_guide as shipped_implementation_guide
from profiles import operation_definitions
from tests.bundle_data import VITALSIGNS, blood_pressure, quantity, vital_sign
from tests.clinic_data import (
    MRN_SYSTEM,
    PROFILE,
    mc_encounter,
    mc_medication_request,
    mc_patient,
    mc_practitioner,
)

CORE = "http://hl7.org/fhir/StructureDefinition/"
# Official R4 examples that do not conform to their base definition: each points a Reference at a
# resource type the element does not allow (the HL7 Java validator reports the same).
KNOWN_INVALID = {
    "DeviceMetric/example": "DeviceMetric.parent",                      # a DeviceDefinition, not a Device
    "DeviceUseStatement/example": "DeviceUseStatement.reasonReference[0]",  # a Procedure
    "MedicationRequest/medrx0301": "MedicationRequest.dispenseRequest.performer",  # a Practitioner
    "Observation/clinical-gender": "Observation.performer[0]",          # an Encounter
}


def errors(resource: dict, url: str) -> list[tuple[str, str | None]]:
    return [(i.code, i.expression) for i in validate_profile(resource, url) if i.severity == "error"]


def diagnostics(resource: dict, url: str) -> str:
    return " | ".join(i.diagnostics for i in validate_profile(resource, url) if i.severity == "error")


def test_official_examples_conform_to_their_base_definitions(official_examples: list[dict]) -> None:
    checked, failures = 0, {}
    for example in official_examples:
        if validate_structure(example)[0]:
            continue  # structurally invalid examples are test_validation_structure's business
        checked += 1
        found = errors(example, CORE + example["resourceType"])
        if found:
            failures[f"{example['resourceType']}/{example.get('id')}"] = found
    assert checked > 650
    assert failures == {name: [("structure", where)] for name, where in KNOWN_INVALID.items()}


def test_the_only_unevaluated_base_invariants_are_documented() -> None:
    assert set(UNEVALUATED) == {"txt-1", "txt-2", "ctm-1", "rng-2", "que-7"}


@pytest.mark.parametrize("make", [mc_patient, mc_practitioner, mc_encounter, mc_medication_request])
def test_conforming_clinic_resources_pass(make: Any) -> None:
    resource = make()
    assert validate_structure(resource)[0] == []
    assert errors(resource, resource["meta"]["profile"][0]) == []


def test_cardinality_min_and_max() -> None:
    request = mc_medication_request()
    del request["requester"]
    del request["dispenseRequest"]["validityPeriod"]
    assert errors(request, PROFILE + "mc-medicationrequest") == [
        ("required", "MedicationRequest.requester"),
        ("required", "MedicationRequest.dispenseRequest.validityPeriod"),
    ]
    patient = mc_patient()
    patient["identifier"].append({"system": MRN_SYSTEM, "value": "second"})
    assert errors(patient, PROFILE + "mc-patient") == [("structure", "Patient.identifier")]
    assert "slice 'mrn' allows at most 1, 2 found" in diagnostics(patient, PROFILE + "mc-patient")


def test_required_child_of_a_data_type_and_of_a_choice() -> None:
    request = mc_medication_request(medicationCodeableConcept={"text": "amlodipine"})
    del request["dispenseRequest"]["validityPeriod"]["end"]
    assert errors(request, PROFILE + "mc-medicationrequest") == [
        ("required", "MedicationRequest.medicationCodeableConcept.coding"),
        ("required", "MedicationRequest.dispenseRequest.validityPeriod.end"),
    ]


def test_types_of_choices_and_reference_targets() -> None:
    request = mc_medication_request(requester={"reference": "Patient/p1"},
                                    subject={"reference": "http://other.example/fhir/Group/g1/_history/2"})
    del request["medicationCodeableConcept"]
    request["medicationReference"] = {"reference": "Medication/m1"}
    found = validate_profile(request, PROFILE + "mc-medicationrequest")
    assert [(i.code, i.expression) for i in found if i.severity == "error"] == [
        ("structure", "MedicationRequest.medicationReference"),
        ("structure", "MedicationRequest.subject"),
        ("structure", "MedicationRequest.requester"),
    ]
    assert "must point to Practitioner or PractitionerRole, not Patient" in diagnostics(
        request, PROFILE + "mc-medicationrequest")


def test_pattern() -> None:
    encounter = mc_encounter()
    encounter["class"]["code"] = "IMP"
    assert errors(encounter, PROFILE + "mc-encounter") == [("value", "Encounter.class")]


def _modified_profile(url: str, element_id: str, **changes: Any) -> Any:
    sd = copy.deepcopy(clinic_profiles()[url])
    element = next(e for e in sd["snapshot"]["element"] if e["id"] == element_id)
    element.update(changes)
    return compile_definition(sd)


def test_fixed_value() -> None:
    profile = _modified_profile(PROFILE + "mc-patient", "Patient.gender", fixedCode="female")
    assert [i.expression for i in validate_against(mc_patient(gender="male"), profile)
            if i.severity == "error"] == ["Patient.gender"]
    assert [i for i in validate_against(mc_patient(), profile) if i.severity == "error"] == []


def test_slicing_by_value_and_by_pattern() -> None:
    patient = mc_patient(identifier=[{"system": "urn:other", "value": "x"}])
    assert errors(patient, PROFILE + "mc-patient") == [("required", "Patient.identifier")]
    practitioner = mc_practitioner()
    practitioner["qualification"][0]["code"] = {"text": "licence"}
    assert errors(practitioner, PROFILE + "mc-practitioner") == [("required", "Practitioner.qualification")]
    practitioner = mc_practitioner()
    del practitioner["qualification"][0]["period"]
    assert errors(practitioner, PROFILE + "mc-practitioner") == [
        ("required", "Practitioner.qualification[0].period")]


def test_a_required_slice_of_an_absent_optional_element() -> None:
    profile = _modified_profile(PROFILE + "mc-patient", "Patient.identifier", min=0)
    patient = mc_patient()
    del patient["identifier"]
    found = [i for i in validate_against(patient, profile) if i.severity == "error"]
    assert [(i.code, i.expression) for i in found] == [("required", "Patient.identifier")]
    assert "slice 'mrn' requires at least 1, 0 found" in found[0].diagnostics


def test_closed_slicing_rejects_values_of_no_slice() -> None:
    slicing = {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"}
    profile = _modified_profile(PROFILE + "mc-patient", "Patient.identifier", slicing=slicing)
    patient = mc_patient()
    patient["identifier"].append({"system": "urn:other", "value": "x"})
    assert [(i.code, i.expression) for i in validate_against(patient, profile) if i.severity == "error"] == [
        ("structure", "Patient.identifier[1]")]


def test_required_binding() -> None:
    assert errors(mc_patient(gender="woman"), PROFILE + "mc-patient") == [("code-invalid", "Patient.gender")]
    encounter = mc_encounter(status="done")
    assert errors(encounter, CORE + "Encounter") == [("code-invalid", "Encounter.status")]
    request = mc_medication_request()
    request["dosageInstruction"][0]["timing"]["repeat"]["periodUnit"] = "fortnight"
    assert errors(request, PROFILE + "mc-medicationrequest") == [
        ("code-invalid", "MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit")]


def test_invariants_of_the_profile_of_data_types_and_of_resources() -> None:
    request = mc_medication_request(dosageInstruction=[{"sequence": 1}])
    assert errors(request, PROFILE + "mc-medicationrequest") == [("invariant", "MedicationRequest")]
    assert "mc-mr-1" in diagnostics(request, PROFILE + "mc-medicationrequest")
    encounter = mc_encounter(period={"start": "2024-03-02", "end": "2024-03-01"})
    assert errors(encounter, PROFILE + "mc-encounter") == [("invariant", "Encounter.period")]
    patient = mc_patient(extension=[{"url": "urn:test:ext"}])
    assert errors(patient, PROFILE + "mc-patient") == [("invariant", "Patient.extension[0]")]
    patient = mc_patient(contained=[{"resourceType": "Organization", "id": "org", "name": "Unreferenced"}])
    assert "dom-3" in diagnostics(patient, CORE + "Patient")
    patient["managingOrganization"] = {"reference": "#org"}
    assert errors(patient, CORE + "Patient") == []


@pytest.mark.parametrize(("start", "end", "met"), [
    ("2000-01-01T00:00:00+02:00", "2000-01-01T00:00:00+00:00", True),   # 22:00Z before 00:00Z
    ("2024-10-27T02:30:00+02:00", "2024-10-27T02:10:00+01:00", True),   # across the end of summer time
    ("2000-01-01T00:00:00+00:00", "2000-01-01T00:00:00+02:00", False),
    ("2000-01-02", "2000-01-01T10:00:00Z", False),
    ("2000-01", "2000-01-15", True),                                    # different precisions: empty, met
])
def test_date_comparisons_in_invariants_compare_instants(start: str, end: str, met: bool) -> None:
    """per-1 is `start <= end`: dateTimes with different offsets compare as instants, not as text."""
    encounter = mc_encounter(period={"start": start, "end": end})
    assert errors(encounter, CORE + "Encounter") == ([] if met else [("invariant", "Encounter.period")])


def test_contained_resources_are_validated_against_their_base_definition() -> None:
    patient = mc_patient(contained=[{"resourceType": "Organization", "id": "org", "name": "x",
                                     "telecom": [{"value": "555"}]}],
                         managingOrganization={"reference": "#org"})
    assert errors(patient, PROFILE + "mc-patient") == [("invariant", "Patient.contained[0].telecom[0]")]


def test_a_profile_of_another_type_is_one_error() -> None:
    assert errors(mc_patient(), PROFILE + "mc-encounter") == [("invalid", "Patient")]


def test_unknown_profile_url_raises_key_error() -> None:
    with pytest.raises(KeyError):
        validate_profile(mc_patient(), "https://unknown.example/StructureDefinition/x")


def test_shipped_conformance_resources_are_valid() -> None:
    for resource in shipped_resources():
        assert validate_structure(resource)[0] == []
        assert [i for i in profile_issues(resource, [], base=True) if i.severity == "error"] == []


def test_shipped_snapshots_are_generated_from_their_differentials() -> None:
    """The snapshot generator, run on the shipped (trimmed) base definitions, gives the shipped
    snapshots: a differential edited without re-running tools/build_profiles.py fails here."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
    from build_profiles import SnapshotBuilder

    builder = SnapshotBuilder(structure_definitions_by_url())
    for sd in clinic_profiles().values():
        assert list(map(_compared, builder.snapshot(sd))) == list(map(_compared, sd["snapshot"]["element"]))


def test_the_shipped_implementation_guide_is_the_generated_index() -> None:
    """tools/build_profiles.py writes the index: a conformance resource added or retitled without
    re-running it fails here."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
    from build_profiles import implementation_guide

    generated = implementation_guide(list(clinic_profiles().values()), list(operation_definitions().values()))
    assert generated == shipped_implementation_guide()


def _compared(element: dict) -> dict:
    """What the trimmed base definitions keep of a snapshot element."""
    kept = {k: element.get(k) for k in ("id", "path", "sliceName", "min", "max", "type", "slicing")}
    kept["binding"] = {k: v for k, v in element.get("binding", {}).items() if k in ("strength", "valueSet")}
    kept["constraint"] = [c["key"] for c in element.get("constraint", ())]
    kept.update({k: v for k, v in element.items() if k.startswith(("fixed", "pattern"))})
    return kept


BP = CORE + "bp"


def _body_weight(**fields: Any) -> dict:
    return vital_sign("Patient/p1", "29463-7", "Body Weight", CORE + "bodyweight",
                      valueQuantity=quantity(4.7, "kg"), **fields)


def test_vital_signs_invariants_see_choice_values() -> None:
    """vs-2 and vs-3 name `value`, which must find `valueQuantity` on the Observation and its components."""
    weight = _body_weight()
    assert errors(weight, VITALSIGNS) == errors(weight, CORE + "bodyweight") == []
    del weight["valueQuantity"]
    assert errors(weight, VITALSIGNS) == [("invariant", "Observation")]
    assert "vs-2" in diagnostics(weight, VITALSIGNS)
    absent = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]}
    assert errors({**weight, "dataAbsentReason": absent}, VITALSIGNS) == []
    pressure = blood_pressure("Patient/p1")
    assert errors(pressure, VITALSIGNS) == []
    del pressure["component"][0]["valueQuantity"]
    assert errors(pressure, VITALSIGNS) == [("invariant", "Observation.component[0]")]
    assert "vs-3" in diagnostics(pressure, VITALSIGNS)


# The official vital-sign examples and the profile of their kind (they claim only vitalsigns).
VITAL_SIGN_PROFILES = {"blood-pressure": "bp", "blood-pressure-cancel": "bp", "blood-pressure-dar": "bp", "bmi": "bmi",
                       "body-height": "bodyheight", "body-length": "bodyheight", "body-temperature": "bodytemp",
                       "head-circumference": "headcircum", "heart-rate": "heartrate", "respiratory-rate": "resprate",
                       "satO2": "oxygensat", "vitals-panel": "vitalspanel"}


def test_official_vital_signs_conform_to_the_profile_of_their_kind(official_examples: list[dict]) -> None:
    """bp slices `component` by `code.coding.code`/`system`, fixed only in the required nested
    slices `code.coding:SBPCode` and `code.coding:DBPCode`."""
    examples = {e["id"]: e for e in official_examples
                if e["resourceType"] == "Observation" and e["id"] in VITAL_SIGN_PROFILES}
    assert set(examples) == set(VITAL_SIGN_PROFILES)
    for name, example in examples.items():
        assert errors(example, CORE + VITAL_SIGN_PROFILES[name]) == [], name
    assert errors(blood_pressure("Patient/p1", BP), BP) == []


def test_bp_without_a_diastolic_component_is_refused(official_examples: list[dict]) -> None:
    example = next(e for e in official_examples if e["resourceType"] == "Observation" and e["id"] == "blood-pressure")
    pressure = copy.deepcopy(example)
    pressure["component"][1]["code"]["coding"][0]["code"] = "8867-4"  # heart rate: two components, no diastolic
    assert errors(pressure, BP) == [("required", "Observation.component")]
    assert diagnostics(pressure, BP) == "Observation.component: slice 'DiastolicBP' requires at least 1, 0 found"
    assert errors(blood_pressure("Patient/p1", BP, diastolic=None), BP) == [
        ("required", "Observation.component"), ("required", "Observation.component")]
    assert "slice 'DiastolicBP'" in diagnostics(blood_pressure("Patient/p1", BP, diastolic=None), BP)


def test_official_examples_conform_to_the_shipped_profiles_they_claim(official_examples: list[dict]) -> None:
    claiming = {f"{e['resourceType']}/{e['id']}": e for e in official_examples
                if any(definition(url) for url in (e.get("meta") or {}).get("profile", ()))}
    assert len(claiming) == 13  # twelve vital signs (vitalsigns), a Questionnaire (cqf-questionnaire)
    failures = {name: [(i.code, i.expression) for i in profile_issues(e, e["meta"]["profile"]) if i.severity == "error"]
                for name, e in claiming.items()}
    assert {name: found for name, found in failures.items() if found} == {}
