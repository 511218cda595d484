"""A MedicalCycle Cloud export file (`docs/migration.md`) as FHIR transaction Bundles.

The first Bundle holds the staff (Practitioner + PractitionerRole per user) and the accounts of
patients without a record; then one Bundle per patient holds the whole record. Every entry is a
PUT to the resource's stable id, so importing the same export again updates in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mappings import patients, users
from mappings.domain import Export, Patient, User
from mappings.fhir import Json


def read_export(path: Path) -> Export:
    """The parsed export; pydantic's `ValidationError` names every field that does not fit the shape."""
    return Export.model_validate_json(Path(path).read_bytes())


def bundles_from_export(path: Path | str) -> Iterator[Json]:
    """One transaction Bundle for the users, then one per patient."""
    yield from bundles(read_export(Path(path)))


def bundles(export: Export) -> Iterator[Json]:
    record_ids = {p.id for p in export.patients}
    accounts = {u.patient_id: u for u in export.users if u.role == "patient" and u.patient_id in record_ids}
    staff = [r for u in export.users if u.role != "patient" or u.patient_id not in record_ids for r in users.to_fhir(u)]
    if staff:
        yield transaction(staff)
    for patient in export.patients:
        yield transaction(patient_resources(patient, accounts.get(patient.id)))


def patient_resources(patient: Patient, account: User | None) -> list[Json]:
    """The patient's record, its Patient linked to the patient's login account if there is one."""
    resources = patients.to_fhir(patient)
    if account is not None:
        resources[0]["identifier"] += users.account_identifiers(account)
    return resources


def transaction(resources: list[Json]) -> Json:
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                      for r in resources]}

