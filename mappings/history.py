"""A patient's medical history: blood type -> Observation (LOINC 882-1), allergies -> AllergyIntolerance,
chronic conditions -> Condition (problem list), family history -> FamilyMemberHistory."""

from __future__ import annotations

from mappings.domain import Allergy, AllergyReaction, ChronicCondition, FamilyHistoryItem, Patient
from mappings.fhir import (
    LOINC,
    SNOMED,
    UCUM,
    Json,
    base,
    code_of,
    compact,
    concept,
    fhir_date,
    find,
    original_id,
    parse_date,
    patient_reference,
)

# SNOMED CT findings for the ABO/Rh groups.
BLOOD_TYPES = {"A+": "278149003", "A-": "278152006", "B+": "278150003", "B-": "278153001",
               "AB+": "278151004", "AB-": "278154007", "O+": "278147001", "O-": "278148006"}
_BLOOD_TYPE_BY_CODE = {code: name for name, code in BLOOD_TYPES.items()}
BLOOD_TYPE_LOINC = "882-1"
_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
ACTIVE = {"coding": [{"system": _TERMINOLOGY + "condition-clinical", "code": "active"}]}
CONFIRMED = {"coding": [{"system": _TERMINOLOGY + "condition-ver-status", "code": "confirmed"}]}
_ALLERGY_ACTIVE = {"coding": [{"system": _TERMINOLOGY + "allergyintolerance-clinical", "code": "active"}]}
_ALLERGY_CONFIRMED = {"coding": [{"system": _TERMINOLOGY + "allergyintolerance-verification", "code": "confirmed"}]}
_PROBLEM_LIST = {"coding": [{"system": _TERMINOLOGY + "condition-category", "code": "problem-list-item"}]}
_LABORATORY = {"coding": [{"system": _TERMINOLOGY + "observation-category", "code": "laboratory"}]}
_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


def to_fhir(patient: Patient) -> list[Json]:
    subject = patient_reference(patient.id)
    resources = [_blood_type(patient.id, patient.blood_type, subject)] if patient.blood_type else []
    resources += [_allergy(a, subject) for a in patient.allergies]
    resources += [_condition(c, subject) for c in patient.chronic_conditions]
    resources += [_family(f, subject) for f in patient.family_history]
    return resources


def from_fhir(resources: list[Json]) -> dict:
    """The history fields of a Patient record, from the resources `to_fhir` made."""
    blood = find(resources, "Observation", "blood-type")
    return {
        "blood_type": _BLOOD_TYPE_BY_CODE[blood[0]["valueCodeableConcept"]["coding"][0]["code"]] if blood else None,
        "allergies": tuple(_allergy_of(r) for r in find(resources, "AllergyIntolerance", "allergy")),
        "chronic_conditions": tuple(ChronicCondition(id=original_id(r, "chronic-condition"), code=code_of(r["code"]),
                                                     onset_date=parse_date(r.get("onsetDateTime")))
                                    for r in find(resources, "Condition", "chronic-condition")),
        "family_history": tuple(_family_of(r) for r in find(resources, "FamilyMemberHistory", "family-history")),
    }


def _blood_type(patient_id: str, blood_type: str, subject: Json) -> Json:
    return {**base("Observation", "blood-type", patient_id), "status": "final", "category": [_LABORATORY],
            "code": {"coding": [{"system": LOINC, "code": BLOOD_TYPE_LOINC,
                                 "display": "ABO and Rh group [Type] in Blood"}]},
            "subject": subject,
            "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": BLOOD_TYPES[blood_type]}],
                                     "text": blood_type}}


def _allergy(allergy: Allergy, subject: Json) -> Json:
    reaction = allergy.reaction
    return compact({**base("AllergyIntolerance", "allergy", allergy.id), "clinicalStatus": _ALLERGY_ACTIVE,
                    "verificationStatus": _ALLERGY_CONFIRMED, "code": {"text": allergy.substance}, "patient": subject,
                    "recordedDate": fhir_date(allergy.recorded_date),
                    "reaction": [compact({"manifestation": [{"text": reaction.manifestation}],
                                          "severity": reaction.severity})] if reaction else None})


def _allergy_of(resource: Json) -> Allergy:
    reaction = next(iter(resource.get("reaction", ())), None)
    return Allergy(id=original_id(resource, "allergy"), substance=resource["code"]["text"],
                   recorded_date=parse_date(resource.get("recordedDate")),
                   reaction=AllergyReaction(manifestation=reaction["manifestation"][0]["text"],
                                            severity=reaction.get("severity")) if reaction else None)


def _condition(condition: ChronicCondition, subject: Json) -> Json:
    return compact({**base("Condition", "chronic-condition", condition.id), "clinicalStatus": ACTIVE,
                    "verificationStatus": CONFIRMED, "category": [_PROBLEM_LIST], "code": concept(condition.code),
                    "subject": subject, "onsetDateTime": fhir_date(condition.onset_date)})


def _family(item: FamilyHistoryItem, subject: Json) -> Json:
    onset = {"onsetAge": {"value": item.onset_age, "unit": "a", "system": UCUM, "code": "a"}} \
        if item.onset_age is not None else {}
    return {**base("FamilyMemberHistory", "family-history", item.id), "status": "completed", "patient": subject,
            "relationship": {"coding": [{"system": _ROLE_CODE, "code": item.relationship}]},
            "condition": [{"code": concept(item.condition), **onset}]}


def _family_of(resource: Json) -> FamilyHistoryItem:
    condition = resource["condition"][0]
    return FamilyHistoryItem(id=original_id(resource, "family-history"),
                             relationship=resource["relationship"]["coding"][0]["code"],
                             condition=code_of(condition["code"]), onset_age=condition.get("onsetAge", {}).get("value"))
