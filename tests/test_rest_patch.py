"""PATCH over HTTP: JSON Patch and FHIRPath Patch, preconditions, and the 400/422 rules."""

from __future__ import annotations

import httpx
import pytest

from tests.fhir_data import fhir_headers, patient

JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def _operation(kind: str, path: str, **parts: object) -> dict:
    part = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        part.append({"name": name, **value} if isinstance(value, dict) else {"name": name, "valueString": value})
    return {"name": "operation", "part": part}


def _parameters(*operations: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(operations)}


@pytest.fixture
def created(client: httpx.Client) -> dict:
    return client.post("/Patient", json=patient(), headers=fhir_headers()).json()


def test_json_patch(client: httpx.Client, created: dict) -> None:
    response = client.patch(f"/Patient/{created['id']}", headers=JSON_PATCH,
                            json=[{"op": "replace", "path": "/gender", "value": "male"},
                                  {"op": "add", "path": "/name/0/given/-", "value": "Byron"}])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gender"] == "male" and body["name"][0]["given"] == ["Ada", "Byron"]
    assert body["meta"]["versionId"] == "2" and body["id"] == created["id"]
    history = client.get(f"/Patient/{created['id']}/_history").json()
    assert history["entry"][0]["request"]["method"] == "PATCH"


def test_fhirpath_patch(client: httpx.Client, created: dict) -> None:
    body = _parameters(_operation("replace", "Patient.birthDate", value={"valueDate": "1990-01-01"}),
                       _operation("add", "Patient", name="deceased", value={"valueBoolean": False}),
                       _operation("delete", "Patient.active"))
    response = client.patch(f"/Patient/{created['id']}", json=body, headers=fhir_headers())
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["birthDate"] == "1990-01-01" and patched["deceasedBoolean"] is False
    assert "active" not in patched


def test_patch_honours_if_match(client: httpx.Client, created: dict) -> None:
    operations = [{"op": "replace", "path": "/gender", "value": "other"}]
    stale = client.patch(f"/Patient/{created['id']}", json=operations, headers={**JSON_PATCH, "If-Match": 'W/"9"'})
    assert stale.status_code == 412
    fresh = client.patch(f"/Patient/{created['id']}", json=operations, headers={**JSON_PATCH, "If-Match": 'W/"1"'})
    assert fresh.status_code == 200


@pytest.mark.parametrize(("operations", "status"), [
    ([{"op": "replace", "path": "/id", "value": "other"}], 422),
    ([{"op": "replace", "path": "/resourceType", "value": "Group"}], 422),
    ([{"op": "replace", "path": "/active", "value": "yes"}], 422),
    ([{"op": "add", "path": "/unknownElement", "value": 1}], 422),
    ([{"op": "test", "path": "/gender", "value": "male"}], 422),
    ([{"op": "remove", "path": "/nothing/here"}], 422),
    ([{"op": "jump", "path": "/gender"}], 400),
])
def test_json_patch_failures(client: httpx.Client, created: dict, operations: list, status: int) -> None:
    response = client.patch(f"/Patient/{created['id']}", json=operations, headers=JSON_PATCH)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/Patient/{created['id']}").json()["meta"]["versionId"] == "1"


def test_fhirpath_patch_failures(client: httpx.Client, created: dict) -> None:
    url = f"/Patient/{created['id']}"
    malformed = _parameters({"name": "operation", "part": [{"name": "type", "valueCode": "explode"}]})
    assert client.patch(url, json=malformed, headers=fhir_headers()).status_code == 400
    missing = _parameters(_operation("replace", "Patient.maritalStatus", value={"valueString": "x"}))
    assert client.patch(url, json=missing, headers=fhir_headers()).status_code == 422
    assert client.patch(url, json={"resourceType": "Patient"}, headers=fhir_headers()).status_code == 400
    assert client.patch(url, json={"op": "add"}, headers=JSON_PATCH).status_code == 400


def test_patch_unknown_or_deleted(client: httpx.Client, created: dict) -> None:
    operations = [{"op": "replace", "path": "/gender", "value": "other"}]
    assert client.patch("/Patient/nope", json=operations, headers=JSON_PATCH).status_code == 404
    client.delete(f"/Patient/{created['id']}")
    assert client.patch(f"/Patient/{created['id']}", json=operations, headers=JSON_PATCH).status_code == 410


def test_conditional_patch(client: httpx.Client, created: dict) -> None:
    identifier = created["identifier"][0]
    response = client.patch(f"/Patient?identifier={identifier['system']}|{identifier['value']}",
                            json=[{"op": "replace", "path": "/gender", "value": "other"}], headers=JSON_PATCH)
    assert response.status_code == 200 and response.json()["id"] == created["id"]
