"""patient <-> Patient (demographics, emergency contact as `contact`) and, through the concept
modules, every resource of the patient's record: history, insurance, consultations, prescriptions."""

from __future__ import annotations

from mappings import consultations, coverage, history, prescriptions
from mappings.domain import Address, EmergencyContact, Patient
from mappings.fhir import CLINIC_PROFILE, MRN, Json, base, compact, fhir_date, find, original_id, parse_date

_EMERGENCY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C",
                          "display": "Emergency Contact"}]}


def to_fhir(patient: Patient) -> list[Json]:
    """The Patient resource first, then the rest of the record."""
    resources = [patient_resource(patient), *history.to_fhir(patient), *coverage.to_fhir(patient)]
    for consultation in patient.consultations:
        resources += consultations.to_fhir(patient, consultation)
    for prescription in patient.prescriptions:
        resources += prescriptions.to_fhir(patient, prescription)
    return resources


def patient_resource(patient: Patient) -> Json:
    p = patient
    telecom = [{"system": s, "value": v} for s, v in (("phone", p.phone), ("email", p.email)) if v]
    address = p.address
    contact = p.emergency_contact
    return compact({
        **base("Patient", MRN, p.id, CLINIC_PROFILE + "mc-patient"),
        "name": [{"family": p.family_name, "given": [p.given_name]}],
        "telecom": telecom, "gender": p.gender, "birthDate": fhir_date(p.birth_date),
        "address": [compact({"line": [address.line], "city": address.city, "postalCode": address.postal_code,
                             "country": address.country})] if address else None,
        "contact": [compact({"relationship": [_EMERGENCY, {"text": contact.relationship}],
                             "name": {"text": contact.name},
                             "telecom": [{"system": "phone", "value": contact.phone}] if contact.phone else None})]
        if contact else None})


def from_fhir(resources: list[Json]) -> Patient:
    """The patient record `to_fhir` produced `resources` from."""
    patient = find(resources, "Patient", MRN)[0]
    telecom = {t["system"]: t["value"] for t in patient.get("telecom", ())}
    address = next(iter(patient.get("address", ())), None)
    contact = next((c for c in patient.get("contact", ()) if _EMERGENCY in c.get("relationship", ())), None)
    return Patient(
        id=original_id(patient, MRN), given_name=patient["name"][0]["given"][0],
        family_name=patient["name"][0]["family"], birth_date=parse_date(patient["birthDate"]),
        gender=patient["gender"], phone=telecom.get("phone"), email=telecom.get("email"),
        address=Address(line=address["line"][0], city=address["city"], postal_code=address.get("postalCode"),
                        country=address.get("country")) if address else None,
        emergency_contact=EmergencyContact(
            name=contact["name"]["text"], relationship=contact["relationship"][1]["text"],
            phone=next((t["value"] for t in contact.get("telecom", ())), None)) if contact else None,
        **history.from_fhir(resources), insurance=coverage.from_fhir(resources),
        consultations=consultations.from_fhir(resources), prescriptions=prescriptions.from_fhir(resources))
