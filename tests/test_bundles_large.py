"""Large transaction Bundles: a Synthea-sized patient record commits whole, one too large for the
database's cache is refused up front, and the embedded database runs without the oplog that made
large commits stall."""

from __future__ import annotations

import os
from collections import Counter

import httpx
import pytest
from pymongo import MongoClient

from bench.patient_bundles import patient_bundle
from tests.bundle_data import bundle, entry, status_code
from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient


def post(client: httpx.Client, body: dict, **headers: str) -> httpx.Response:
    return client.post("/", json=body, headers=fhir_headers(**headers), timeout=600)


def test_transaction_of_hundreds_of_cross_referenced_entries_commits_whole(
        client: httpx.Client, server: LiveServer, mongo: MongoClient) -> None:
    body = patient_bundle(7, encounters=75)  # 604 entries, every reference a urn:uuid
    response = post(client, body, Prefer="return=minimal")
    assert response.status_code == 200, response.text[:500]
    results = response.json()["entry"]
    assert [status_code(r) for r in results] == [201] * len(body["entry"])
    # Locations are absolute and version-specific: keep `Type/id`.
    locations = ["/".join(r["response"]["location"].split("/_history")[0].split("/")[-2:]) for r in results]
    database = mongo[server.settings.database_name]
    by_type = Counter(location.split("/")[0] for location in locations)
    for resource_type, count in by_type.items():
        ids = [location.split("/")[1] for location in locations if location.startswith(f"{resource_type}/")]
        assert database[resource_type].count_documents({"_id": {"$in": ids}}) == count
    patient_location = locations[3]
    observation = client.get(f"/{locations[5]}").json()
    assert observation["subject"]["reference"] == patient_location
    assert client.get(f"/Observation?subject={patient_location}&_summary=count").json()["total"] == \
        by_type["Observation"]


def test_transaction_over_the_byte_limit_gets_413_naming_the_setting(make_server, mongo: MongoClient) -> None:
    small = make_server(max_transaction_bytes=2000)
    with httpx.Client(base_url=small.url, auth=small.auth) as http:
        entries = [entry("POST", "Patient", patient()) for _ in range(20)]
        response = post(http, bundle("transaction", *entries))
        assert response.status_code == 413
        issue = response.json()["issue"][0]
        assert issue["code"] == "too-costly"
        assert "FHIR_MAX_TRANSACTION_BYTES" in issue["diagnostics"] and "2000" in issue["diagnostics"]
        assert mongo[small.settings.database_name]["Patient"].count_documents({}) == 0
        # A batch commits entry by entry: the bound does not apply to it.
        assert post(http, bundle("batch", *entries)).status_code == 200
        assert mongo[small.settings.database_name]["Patient"].count_documents({}) == 20


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="checks the embedded database")
def test_embedded_database_runs_without_the_oplog(mongo: MongoClient) -> None:
    # A replica-set member keeps an oplog; the embedded database must not (see storage/embedded.py).
    assert "setName" not in mongo.admin.command("hello")
