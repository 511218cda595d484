"""Builders of batch/transaction Bundles for the tests."""

from __future__ import annotations

import uuid
from typing import Any

Json = dict[str, Any]


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def entry(method: str, url: str, resource: Json | None = None, full_url: str | None = None, **request: str) -> Json:
    item: Json = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        item["resource"] = resource
    if full_url:
        item["fullUrl"] = full_url
    return item


def bundle(kind: str, *entries: Json) -> Json:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def observation(subject: str, **fields: Any) -> Json:
    resource: Json = {"resourceType": "Observation", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                      "subject": {"reference": subject}, "valueQuantity": {"value": 72, "unit": "/min"}}
    resource.update(fields)
    return resource


CORE = "http://hl7.org/fhir/StructureDefinition/"
VITALSIGNS = CORE + "vitalsigns"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def vital_sign(subject: str, code: str, display: str, *profiles: str, **fields: Any) -> Json:
    """A vital-sign Observation shaped as Synthea writes them, claiming `vitalsigns` and `profiles`."""
    resource: Json = {"resourceType": "Observation", "meta": {"profile": [VITALSIGNS, *profiles]},
                      "status": "final",
                      "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                                "code": "vital-signs"}]}],
                      "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                      "subject": {"reference": subject}, "effectiveDateTime": "2020-12-01T04:57:48.793331+00:00"}
    resource.update(fields)
    return resource


def quantity(value: float, unit: str) -> Json:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def blood_pressure(subject: str, *profiles: str, systolic: float = 112.2, diastolic: float | None = 81.7) -> Json:
    """A blood-pressure panel with systolic and (unless None) diastolic components."""
    components = [("8480-6", "Systolic blood pressure", systolic), ("8462-4", "Diastolic blood pressure", diastolic)]
    return vital_sign(subject, "85354-9", "Blood pressure panel with all children optional", *profiles,
                      component=[{"code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                                  "valueQuantity": quantity(value, "mm[Hg]")}
                                 for code, display, value in components if value is not None])


def status_code(response_entry: Json) -> int:
    return int(response_entry["response"]["status"].split()[0])
