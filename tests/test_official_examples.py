"""Every official R4 example round-trips through the generic REST path.

create -> read back equal (apart from id and server meta) -> update -> history -> delete -> 410.
AuditEvent is the exception: only the server writes it, so over REST its create is refused.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest

from tests.fhir_data import fhir_headers
from tests.test_validation_structure import INVALID_EXAMPLES

EXAMPLES_FILE = Path(__file__).parent / "data" / "r4-examples.ndjson.gz"
SERVER_WRITTEN = {"AuditEvent"}


def _examples() -> list[dict]:
    with gzip.open(EXAMPLES_FILE, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _without_server_fields(resource: dict) -> dict:
    copy = {k: v for k, v in resource.items() if k != "id"}
    meta = {k: v for k, v in copy.pop("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        copy["meta"] = meta
    return copy


EXAMPLES = _examples()
REQUIRED_TYPES = {"Patient", "Practitioner", "PractitionerRole", "Encounter", "MedicationRequest",
                  "MedicationDispense", "Observation", "Condition", "AllergyIntolerance"}


def test_required_types_are_covered() -> None:
    assert {e["resourceType"] for e in EXAMPLES} >= REQUIRED_TYPES
    assert len(EXAMPLES) >= 700


def _example_id(example: dict) -> str:
    return f"{example['resourceType']}-{example.get('id', '')}"


def _invalid(example: dict) -> bool:
    return (example["resourceType"], example.get("id")) in INVALID_EXAMPLES


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e["resourceType"] not in SERVER_WRITTEN
                                     and not _invalid(e)], ids=_example_id)
def test_round_trip(client: httpx.Client, example: dict) -> None:
    kind = example["resourceType"]
    created = client.post(f"/{kind}", json=example, headers=fhir_headers())
    assert created.status_code == 201, created.text
    resource_id = created.json()["id"]
    url = f"/{kind}/{resource_id}"

    read = client.get(url).json()
    assert _without_server_fields(read) == _without_server_fields(example)

    updated = client.put(url, json={**read, "language": "en"}, headers=fhir_headers())
    assert updated.status_code == 200, updated.text
    assert updated.json()["meta"]["versionId"] == "2"

    history = client.get(f"{url}/_history").json()
    assert [e["response"]["etag"] for e in history["entry"]] == ['W/"2"', 'W/"1"']
    assert _without_server_fields(history["entry"][1]["resource"]) == _without_server_fields(example)

    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 410


@pytest.mark.parametrize("example", [e for e in EXAMPLES if _invalid(e)], ids=_example_id)
def test_invalid_examples_are_refused_with_one_issue_per_problem(client: httpx.Client, example: dict) -> None:
    response = client.post(f"/{example['resourceType']}", json=example, headers=fhir_headers())
    assert response.status_code == 400
    issues = response.json()["issue"]
    assert len(issues) > 1 and all(i["expression"] for i in issues)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e["resourceType"] in SERVER_WRITTEN], ids=_example_id)
def test_server_written_types_are_read_only(client: httpx.Client, example: dict) -> None:
    response = client.post(f"/{example['resourceType']}", json=example, headers=fhir_headers())
    assert response.status_code == 405
