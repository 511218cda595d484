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


def status_code(response_entry: Json) -> int:
    return int(response_entry["response"]["status"].split()[0])
