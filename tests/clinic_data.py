"""Builders of resources conforming to the clinic's profiles (profiles/), each call with fresh ids."""

from __future__ import annotations

from typing import Any

from tests.fhir_data import unique

Json = dict[str, Any]
PROFILE = "https://medicalcycle.example/fhir/StructureDefinition/"
MRN_SYSTEM = "https://medicalcycle.example/fhir/sid/mrn"
LICENCE_CODE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MD"}]}


def _claiming(profile: str, resource: Json, fields: dict[str, Any]) -> Json:
    resource["meta"] = {"profile": [PROFILE + profile]}
    resource.update(fields)
    return resource


def mc_patient(**fields: Any) -> Json:
    return _claiming("mc-patient", {
        "resourceType": "Patient",
        "identifier": [{"system": MRN_SYSTEM, "value": unique("mrn")}],
        "name": [{"family": unique("Family"), "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1980-04-02",
    }, fields)


def mc_practitioner(**fields: Any) -> Json:
    return _claiming("mc-practitioner", {
        "resourceType": "Practitioner",
        "name": [{"family": unique("Doctor")}],
        "qualification": [{
            "code": LICENCE_CODE,
            "identifier": [{"system": "urn:test:licence", "value": unique("lic")}],
            "period": {"start": "2015-01-01", "end": "2030-12-31"},
        }],
    }, fields)


def mc_encounter(**fields: Any) -> Json:
    return _claiming("mc-encounter", {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{unique('p')}"},
        "period": {"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:30:00Z"},
    }, fields)


def mc_medication_request(**fields: Any) -> Json:
    return _claiming("mc-medicationrequest", {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361", "display": "Amlodipine 5 MG"}]},
        "subject": {"reference": f"Patient/{unique('p')}"},
        "authoredOn": "2024-03-01",
        "requester": {"reference": f"Practitioner/{unique('dr')}"},
        "dosageInstruction": [{"text": "5 mg once daily",
                               "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}],
        "dispenseRequest": {"numberOfRepeatsAllowed": 2,
                            "validityPeriod": {"start": "2024-03-01", "end": "2024-09-01"}},
    }, fields)
