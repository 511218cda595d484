"""Batch Bundles: every interaction inside a batch, independence of entries, audit per entry."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from pymongo import MongoClient

from fhir_server.audit.collections import RESOURCE_TYPE
from tests.bundle_data import bundle, entry, observation, status_code, urn
from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient, unique


def post(client: httpx.Client, body: dict, **headers: str) -> httpx.Response:
    response = client.post("/", json=body, headers=fhir_headers(**headers))
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "batch-response"
    return response


def create(client: httpx.Client, resource: dict) -> dict:
    response = client.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
    assert response.status_code == 201, response.text
    return response.json()


def with_mrn(mrn: str) -> dict:
    return patient(identifier=[{"system": "urn:test:mrn", "value": mrn}])


def test_every_interaction_works_inside_a_batch(client: httpx.Client) -> None:
    read_me = create(client, patient())
    update_me = create(client, patient())
    patch_me = create(client, patient())
    binary_patch_me = create(client, patient())
    delete_me = create(client, patient())
    cond_update, cond_delete, cond_patch, cond_create = (unique("mrn") for _ in range(4))
    create(client, with_mrn(cond_update))
    create(client, with_mrn(cond_delete))
    create(client, with_mrn(cond_patch))
    existing_for_create = create(client, with_mrn(cond_create))
    json_patch = base64.b64encode(json.dumps([{"op": "replace", "path": "/active", "value": False}]).encode())
    fhirpath_patch = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.gender"},
        {"name": "value", "valueCode": "other"}]}]}
    entries = [
        entry("GET", f"Patient/{read_me['id']}"),
        entry("GET", f"Patient/{read_me['id']}/_history/1"),
        entry("GET", f"Patient/{read_me['id']}/_history"),
        entry("GET", f"Patient/{read_me['id']}", ifNoneMatch='W/"1"'),
        entry("POST", "Patient", patient()),
        entry("PUT", f"Patient/{update_me['id']}", {**update_me, "gender": "male"}, ifMatch='W/"1"'),
        entry("PATCH", f"Patient/{patch_me['id']}", fhirpath_patch),
        entry("PATCH", f"Patient/{binary_patch_me['id']}",
              {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": json_patch.decode()}),
        entry("DELETE", f"Patient/{delete_me['id']}"),
        entry("PUT", f"Patient?identifier=urn:test:mrn|{cond_update}", with_mrn(cond_update)),
        entry("DELETE", f"Patient?identifier=urn:test:mrn|{cond_delete}"),
        entry("PATCH", f"Patient?identifier=urn:test:mrn|{cond_patch}", fhirpath_patch),
        entry("POST", "Patient", with_mrn(cond_create), ifNoneExist=f"identifier=urn:test:mrn|{cond_create}"),
        entry("GET", "metadata"),
    ]
    result = post(client, bundle("batch", *entries)).json()["entry"]
    assert [status_code(e) for e in result] == [200, 200, 200, 304, 201, 200, 200, 200, 204, 200, 204, 200, 200, 200]
    assert result[0]["resource"]["id"] == read_me["id"]
    assert result[2]["resource"]["type"] == "history"
    assert result[4]["response"]["location"].startswith(str(client.base_url))
    assert result[5]["response"]["etag"] == 'W/"2"'
    assert client.get(f"/Patient/{patch_me['id']}").json()["gender"] == "other"
    assert client.get(f"/Patient/{binary_patch_me['id']}").json()["active"] is False
    assert client.get(f"/Patient/{delete_me['id']}").status_code == 410
    assert result[12]["resource"]["id"] == existing_for_create["id"]
    assert result[13]["resource"]["resourceType"] == "CapabilityStatement"


def test_entries_are_independent(client: httpx.Client) -> None:
    stale = create(client, patient())
    entries = [
        entry("POST", "Patient", patient()),
        entry("GET", f"Patient/{unique('missing')}"),
        entry("POST", "Patient", {"resourceType": "Patient", "birthDate": "yesterday"}),
        entry("PUT", f"Patient/{stale['id']}", stale, ifMatch='W/"7"'),
        entry("GET", "NotAType/1"),
        entry("POST", "Observation", observation(f"Patient?identifier=urn:test:mrn|{unique()}")),
        entry("POST", "Patient", patient()),
    ]
    result = post(client, bundle("batch", *entries)).json()["entry"]
    assert [status_code(e) for e in result] == [201, 404, 400, 412, 404, 412, 201]
    for failed in result[1:6]:
        assert failed["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert "resource" not in failed
    for created in (result[0], result[6]):
        assert client.get(created["response"]["location"]).status_code == 200


def test_batch_does_not_resolve_references_between_entries(client: httpx.Client) -> None:
    patient_urn = urn()
    entries = [entry("POST", "Patient", patient(), patient_urn),
               entry("POST", "Observation", observation(patient_urn), urn())]
    result = post(client, bundle("batch", *entries)).json()["entry"]
    assert [status_code(e) for e in result] == [201, 201]
    assert result[1]["resource"]["subject"]["reference"] == patient_urn


def events_for(mongo: MongoClient, server: LiveServer, request_id: str, expected: int) -> list[dict]:
    """The AuditEvents of one request, waiting briefly for the sealer."""
    collection = mongo[server.settings.database_name][RESOURCE_TYPE]
    deadline = time.monotonic() + 15
    while True:
        events = [d["res"] for d in collection.find({"res.entity.what.identifier.value": request_id})]
        if len(events) >= expected or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_each_entry_is_audited(client: httpx.Client, server: LiveServer, mongo: MongoClient, kind: str) -> None:
    request_id = unique("req")
    target = create(client, patient())
    entries = [entry("GET", f"Patient/{target['id']}"), entry("POST", "Patient", patient())]
    response = client.post("/", json=bundle(kind, *entries), headers=fhir_headers(**{"X-Request-Id": request_id}))
    assert response.status_code == 200
    # One event per entry, plus one for the Bundle itself.
    events = events_for(mongo, server, request_id, len(entries) + 1)
    assert len(events) == len(entries) + 1
    assert {c["code"] for e in events for c in e.get("subtype", [])} >= {"batch", "read", "create"}
