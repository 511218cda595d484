"""insurance <-> Coverage: the insurer as payor (by name), the policy number as subscriberId."""

from __future__ import annotations

from mappings.domain import Insurance, Patient
from mappings.fhir import (
    Json,
    base,
    compact,
    fhir_date,
    find,
    original_id,
    parse_date,
    patient_reference,
    period,
)


def to_fhir(patient: Patient) -> list[Json]:
    subject = patient_reference(patient.id)
    return [compact({**base("Coverage", "insurance", i.id), "status": "active", "subscriberId": i.policy_number,
                     "beneficiary": subject, "payor": [{"display": i.provider}],
                     "period": period(fhir_date(i.valid_from), fhir_date(i.valid_to))})
            for i in patient.insurance]


def from_fhir(resources: list[Json]) -> tuple[Insurance, ...]:
    return tuple(Insurance(id=original_id(r, "insurance"), provider=r["payor"][0]["display"],
                           policy_number=r["subscriberId"], valid_from=parse_date(r.get("period", {}).get("start")),
                           valid_to=parse_date(r.get("period", {}).get("end")))
                 for r in find(resources, "Coverage", "insurance"))
