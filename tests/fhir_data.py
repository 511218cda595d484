"""Builders of test resources: each call makes fresh, uniquely identified data."""

from __future__ import annotations

import uuid
from typing import Any

Json = dict[str, Any]
FHIR_JSON = "application/fhir+json"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def patient(**fields: Any) -> Json:
    resource: Json = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": unique("mrn")}],
        "name": [{"family": unique("Family"), "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1980-04-02",
        "active": True,
    }
    resource.update(fields)
    return resource


def fhir_headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": FHIR_JSON, **extra}
