"""consultation <-> Encounter (class AMB) with its vitals (Observations), diagnosis (Condition),
notes and examination (ClinicalImpression: summary and note), plan (CarePlan) and follow-up
(ServiceRequest for a follow-up visit on a date)."""

from __future__ import annotations

from mappings import vitals
from mappings.domain import Consultation, FollowUp, Patient
from mappings.fhir import (
    CLINIC_PROFILE,
    Json,
    base,
    code_of,
    compact,
    concept,
    fhir_date,
    fhir_datetime,
    find,
    original_id,
    parse_date,
    parse_datetime,
    patient_reference,
    period,
    reference,
    referenced_id,
)
from mappings.history import ACTIVE, CONFIRMED

_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
AMBULATORY = {"system": _TERMINOLOGY + "v3-ActCode", "code": "AMB", "display": "ambulatory"}
_ENCOUNTER_DIAGNOSIS = {"coding": [{"system": _TERMINOLOGY + "condition-category", "code": "encounter-diagnosis"}]}
_FOLLOW_UP = {"text": "Follow-up consultation"}


def to_fhir(patient: Patient, consultation: Consultation) -> list[Json]:
    c = consultation
    subject = patient_reference(patient.id)
    encounter = reference("Encounter", "consultation", c.id)
    doctor = reference("Practitioner", "account", c.doctor_id)
    out: list[Json] = []
    if c.diagnosis is not None:
        out.append({**base("Condition", "consultation-diagnosis", c.id), "clinicalStatus": ACTIVE,
                    "verificationStatus": CONFIRMED, "category": [_ENCOUNTER_DIAGNOSIS],
                    "code": concept(c.diagnosis), "subject": subject, "encounter": encounter, "asserter": doctor})
    out.insert(0, compact({
        **base("Encounter", "consultation", c.id, CLINIC_PROFILE + "mc-encounter"),
        "status": "finished" if c.end else "in-progress",
        "class": AMBULATORY, "subject": subject, "participant": [{"individual": doctor}],
        "period": period(fhir_datetime(c.start), fhir_datetime(c.end)), "reasonCode": [{"text": c.reason}],
        "diagnosis": [{"condition": reference("Condition", "consultation-diagnosis", c.id)}] if out else None}))
    if c.vitals is not None:
        out += vitals.to_fhir(c.id, c.vitals, c.start, {"subject": subject, "encounter": encounter,
                                                        "performer": [doctor]})
    if c.notes is not None or c.examination is not None:
        out.append(compact({**base("ClinicalImpression", "consultation-notes", c.id), "status": "completed",
                            "subject": subject, "encounter": encounter, "assessor": doctor,
                            "effectiveDateTime": fhir_datetime(c.start), "summary": c.notes,
                            "note": [{"text": c.examination}] if c.examination is not None else None}))
    if c.plan is not None:
        out.append({**base("CarePlan", "consultation-plan", c.id), "status": "active", "intent": "plan",
                    "subject": subject, "encounter": encounter, "author": doctor, "description": c.plan})
    if c.follow_up is not None:
        out.append({**base("ServiceRequest", "consultation-follow-up", c.id), "status": "active", "intent": "order",
                    "code": _FOLLOW_UP, "subject": subject, "encounter": encounter, "requester": doctor,
                    "occurrenceDateTime": fhir_date(c.follow_up.date), "reasonCode": [{"text": c.follow_up.reason}]})
    return out


def from_fhir(resources: list[Json]) -> tuple[Consultation, ...]:
    """The consultations whose Encounters (and companion resources) are among `resources`."""

    def companion(resource_type: str, kind: str, consultation_id: str) -> Json | None:
        return next((r for r in find(resources, resource_type, kind) if original_id(r, kind) == consultation_id), None)

    out = []
    for encounter in find(resources, "Encounter", "consultation"):
        cid = original_id(encounter, "consultation")
        diagnosis = companion("Condition", "consultation-diagnosis", cid)
        notes = companion("ClinicalImpression", "consultation-notes", cid) or {}
        plan = companion("CarePlan", "consultation-plan", cid)
        follow_up = companion("ServiceRequest", "consultation-follow-up", cid)
        out.append(Consultation(
            id=cid, doctor_id=referenced_id(encounter["participant"][0]["individual"], "account"),
            start=parse_datetime(encounter["period"]["start"]), end=parse_datetime(encounter["period"].get("end")),
            reason=encounter["reasonCode"][0]["text"], vitals=vitals.from_fhir(cid, resources),
            diagnosis=code_of(diagnosis["code"]) if diagnosis else None, notes=notes.get("summary"),
            examination=notes["note"][0]["text"] if "note" in notes else None,
            plan=plan["description"] if plan else None,
            follow_up=FollowUp(date=parse_date(follow_up["occurrenceDateTime"]),
                               reason=follow_up["reasonCode"][0]["text"]) if follow_up else None))
    return tuple(out)
