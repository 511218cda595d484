"""FHIR building blocks the mapping modules share: stable identities, references, codes and dates.

Every resource a mapping produces carries an identifier `{system: SID + kind, value: original id}`
and a logical id derived from it (`stable_id`), so importing the same record again updates the
same resource. References carry the target's identifier too, so a resource maps back to the
original ids without reading its targets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from mappings.domain import Code

Json = dict[str, Any]

SID = "https://medicalcycle.example/fhir/sid/"
"""Base of the identifier systems of the original system's ids (`SID + "mrn"`...)."""
CLINIC_PROFILE = "https://medicalcycle.example/fhir/StructureDefinition/"
"""Base of the clinic's profiles (`profiles/`): mc-patient, mc-practitioner, mc-encounter, mc-medicationrequest."""
CORE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
MRN = "mrn"
"""The kind of a patient record's id: it is the clinic's medical record number."""
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, SID)


def system(kind: str) -> str:
    return SID + kind


def stable_id(kind: str, original: str) -> str:
    """The logical id of the resource made from record `original` of `kind`: the same on every import."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}|{original}"))


def identifier(kind: str, original: str) -> Json:
    return {"system": system(kind), "value": original}


def base(resource_type: str, kind: str, original: str, profile: str | None = None) -> Json:
    """The start of a produced resource: type, stable id, the `profile` it claims, the identifier of its record."""
    start: Json = {"resourceType": resource_type, "id": stable_id(kind, original)}
    if profile is not None:
        start["meta"] = {"profile": [profile]}
    start["identifier"] = [identifier(kind, original)]
    return start


def reference(resource_type: str, kind: str, original: str) -> Json:
    return {"reference": f"{resource_type}/{stable_id(kind, original)}", "identifier": identifier(kind, original)}


def patient_reference(patient_id: str) -> Json:
    return reference("Patient", MRN, patient_id)


def original_id(resource: Json, kind: str) -> str | None:
    """The original id recorded in `resource`'s identifiers for `kind`."""
    wanted = system(kind)
    return next((i["value"] for i in resource.get("identifier", ()) if i.get("system") == wanted), None)


def referenced_id(ref: Json | None, kind: str) -> str | None:
    """The original id a reference made by `reference` points at."""
    ident = (ref or {}).get("identifier") or {}
    return ident.get("value") if ident.get("system") == system(kind) else None


def find(resources: Iterable[Json], resource_type: str, kind: str) -> list[Json]:
    """The resources of `resource_type` made from records of `kind`."""
    return [r for r in resources if r.get("resourceType") == resource_type and original_id(r, kind) is not None]


def concept(code: Code) -> Json:
    coding: Json = {"system": code.system, "code": code.code}
    if code.display is not None:
        coding["display"] = code.display
    return {"coding": [coding]}


def code_of(value: Json) -> Code:
    coding = value["coding"][0]
    return Code(system=coding["system"], code=coding["code"], display=coding.get("display"))


def quantity(value: float, unit: str) -> Json:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def fhir_date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value is not None else None


def fhir_datetime(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def parse_datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def period(start: str | None, end: str | None) -> Json | None:
    found = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    return found or None


def compact(resource: Json) -> Json:
    """`resource` without the keys whose value is None or empty (FHIR forbids empty elements)."""
    return {k: v for k, v in resource.items() if v is not None and v != [] and v != {}}
