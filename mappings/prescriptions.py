"""prescription <-> MedicationRequest: medication code, dosageInstruction (dose and timing),
`dispenseRequest.numberOfRepeatsAllowed` = refills, `validityPeriod` = prescribed .. expiry, status.
Its dispensings map through `dispensings`."""

from __future__ import annotations

from mappings import dispensings
from mappings.domain import Dose, Frequency, Patient, Prescription
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
    quantity,
    reference,
    referenced_id,
)


def to_fhir(patient: Patient, prescription: Prescription) -> list[Json]:
    p = prescription
    dosage = compact({"text": p.instructions,
                      "timing": {"repeat": {"frequency": p.frequency.times, "period": p.frequency.period,
                                            "periodUnit": p.frequency.period_unit}},
                      "doseAndRate": [{"doseQuantity": quantity(p.dose.value, p.dose.unit)}]})
    request = compact({
        **base("MedicationRequest", "prescription", p.id, CLINIC_PROFILE + "mc-medicationrequest"),
        "status": p.status, "intent": "order",
        "medicationCodeableConcept": concept(p.medication), "subject": patient_reference(patient.id),
        "encounter": reference("Encounter", "consultation", p.consultation_id) if p.consultation_id else None,
        "authoredOn": fhir_datetime(p.prescribed_at), "requester": reference("Practitioner", "account", p.doctor_id),
        "dosageInstruction": [dosage],
        # Valid from the day of prescribing (a date, like the end, so per-1 compares like with like).
        "dispenseRequest": {"validityPeriod": {"start": fhir_date(p.prescribed_at.date()),
                                               "end": fhir_date(p.expires_on)},
                            "numberOfRepeatsAllowed": p.refills}})
    return [request, *(dispensings.to_fhir(patient, p, d) for d in p.dispensings)]


def from_fhir(resources: list[Json]) -> tuple[Prescription, ...]:
    out = []
    for request in find(resources, "MedicationRequest", "prescription"):
        pid = original_id(request, "prescription")
        dosage = request["dosageInstruction"][0]
        repeat = dosage["timing"]["repeat"]
        dose = dosage["doseAndRate"][0]["doseQuantity"]
        dispense = request["dispenseRequest"]
        out.append(Prescription(
            id=pid, doctor_id=referenced_id(request["requester"], "account"),
            consultation_id=referenced_id(request.get("encounter"), "consultation"),
            prescribed_at=parse_datetime(request["authoredOn"]),
            medication=code_of(request["medicationCodeableConcept"]),
            dose=Dose(value=dose["value"], unit=dose["code"]),
            frequency=Frequency(times=repeat["frequency"], period=repeat["period"], period_unit=repeat["periodUnit"]),
            instructions=dosage.get("text"), refills=dispense["numberOfRepeatsAllowed"],
            expires_on=parse_date(dispense["validityPeriod"]["end"]), status=request["status"],
            dispensings=dispensings.from_fhir(pid, resources)))
    return tuple(out)
