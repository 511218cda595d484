"""GET /metadata, /healthz, /readyz, FHIR_BASE_URL, and what start-up leaves behind."""

from __future__ import annotations

import gc

import httpx

from fhir_server.definitions import resource_types
from tests.fhir_data import fhir_headers, patient


def test_capability_statement_lists_every_type_and_interaction(client: httpx.Client) -> None:
    statement = client.get("/metadata").json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert "application/fhir+json" in statement["format"]
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == set(resource_types())
    patient_codes = {i["code"] for i in resources["Patient"]["interaction"]}
    assert {"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create"} <= patient_codes
    audit_codes = {i["code"] for i in resources["AuditEvent"]["interaction"]}
    assert {"read", "vread"} <= audit_codes <= {"read", "vread", "search-type"}
    assert {"code": "history-system"} in statement["rest"][0]["interaction"]


def test_health_endpoints(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_base_url_setting_is_used_in_locations_and_links(make_server) -> None:
    base = "https://fhir.example.org/r4"
    live = make_server(base_url=base)
    created = httpx.post(f"{live.url}/Patient", json=patient(), headers=fhir_headers(), auth=live.auth)
    assert created.headers["Location"].startswith(f"{base}/Patient/")
    history = httpx.get(f"{live.url}/Patient/_history", auth=live.auth).json()
    assert all(link["url"].startswith(f"{base}/Patient/_history") for link in history["link"])
    assert httpx.get(f"{live.url}/metadata").json()["implementation"]["url"] == base


def test_start_up_freezes_what_it_loaded(make_server) -> None:
    """The definitions and registries loaded at start-up are left out of the collector's scans."""
    live = make_server()
    assert httpx.get(f"{live.url}/readyz").status_code == 200
    assert gc.get_freeze_count() > 100_000
