"""dispensing <-> MedicationDispense: who handed over what quantity when, for which prescription."""

from __future__ import annotations

from mappings.domain import Dispensing, Dose, Patient, Prescription
from mappings.fhir import (
    UCUM,
    Json,
    base,
    compact,
    concept,
    fhir_datetime,
    find,
    original_id,
    parse_datetime,
    patient_reference,
    quantity,
    reference,
    referenced_id,
)


def days_supply(days: int) -> Json:
    return {"value": days, "unit": "d", "system": UCUM, "code": "d"}


def to_fhir(patient: Patient, prescription: Prescription, dispensing: Dispensing) -> Json:
    d = dispensing
    return compact({
        **base("MedicationDispense", "dispensing", d.id), "status": "completed",
        "medicationCodeableConcept": concept(prescription.medication),
        "subject": patient_reference(patient.id),
        "performer": [{"actor": reference("Practitioner", "account", d.pharmacist_id)}],
        "authorizingPrescription": [reference("MedicationRequest", "prescription", prescription.id)],
        "quantity": quantity(d.quantity.value, d.quantity.unit),
        "daysSupply": days_supply(d.days_supply) if d.days_supply is not None else None,
        "whenHandedOver": fhir_datetime(d.dispensed_at)})


def from_fhir(prescription_id: str, resources: list[Json]) -> tuple[Dispensing, ...]:
    """The dispensings of prescription `prescription_id` among `resources`."""
    return tuple(
        Dispensing(id=original_id(r, "dispensing"), pharmacist_id=referenced_id(r["performer"][0]["actor"], "account"),
                   dispensed_at=parse_datetime(r["whenHandedOver"]),
                   quantity=Dose(value=r["quantity"]["value"], unit=r["quantity"]["code"]),
                   days_supply=r["daysSupply"]["value"] if "daysSupply" in r else None)
        for r in find(resources, "MedicationDispense", "dispensing")
        if referenced_id(r["authorizingPrescription"][0], "prescription") == prescription_id)
