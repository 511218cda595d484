"""Bad input always gets a 4xx OperationOutcome with the right status and issue code."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient


def _outcome(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all(i["severity"] in ("error", "fatal") for i in body["issue"])
    return body


def test_malformed_json_is_400(client: httpx.Client) -> None:
    body = _outcome(client.post("/Patient", content=b'{"resourceType": "Patient",', headers=fhir_headers()), 400)
    assert body["issue"][0]["code"] == "structure"


def test_wrong_resource_type_for_url_is_400(client: httpx.Client) -> None:
    _outcome(client.post("/Patient", json={"resourceType": "Observation"}, headers=fhir_headers()), 400)


def test_non_object_body_is_400(client: httpx.Client) -> None:
    _outcome(client.post("/Patient", json=[1, 2], headers=fhir_headers()), 400)
    _outcome(client.post("/Patient", content=b"", headers=fhir_headers()), 400)


@pytest.mark.parametrize("path", ["/NotAType", "/NotAType/1", "/NotAType/_history"])
def test_unknown_resource_type_is_404(client: httpx.Client, path: str) -> None:
    body = _outcome(client.get(path), 404)
    assert body["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize("path", ["/patient/1", "/no-such-endpoint"])
def test_unknown_path_is_404_with_outcome(client: httpx.Client, path: str) -> None:
    body = _outcome(client.get(path), 404)
    assert body["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize("bad_id", ["a" * 65, "has space", "under_score", "ünïcode"])
def test_invalid_id_is_400(client: httpx.Client, bad_id: str) -> None:
    _outcome(client.get(f"/Patient/{bad_id}"), 400)
    _outcome(client.put(f"/Patient/{bad_id}", json=patient(id=bad_id), headers=fhir_headers()), 400)


def test_primitive_json_types_are_checked_strictly(client: httpx.Client) -> None:
    body = _outcome(client.post("/Patient", json=patient(active="true"), headers=fhir_headers()), 400)
    assert any("Patient.active" in i.get("expression", [""])[0] for i in body["issue"])


def test_method_not_allowed_is_405(client: httpx.Client) -> None:
    _outcome(client.post("/Patient/123", json=patient(), headers=fhir_headers()), 405)
    _outcome(client.delete("/Patient/123/_history/1"), 405)


def test_audit_events_cannot_be_written_over_rest(client: httpx.Client) -> None:
    event = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2024-01-01T00:00:00Z",
             "agent": [{"requestor": True}], "source": {"observer": {"display": "x"}}}
    _outcome(client.post("/AuditEvent", json=event, headers=fhir_headers()), 405)
    _outcome(client.put("/AuditEvent/x", json={**event, "id": "x"}, headers=fhir_headers()), 405)
    _outcome(client.delete("/AuditEvent/x"), 405)
    _outcome(client.patch("/AuditEvent/x", json=[], headers={"Content-Type": "application/json-patch+json"}), 405)
    _outcome(client.get("/AuditEvent/x/_history"), 405)
    _outcome(client.get("/AuditEvent/_history"), 405)


def test_oversized_body_is_413(make_server) -> None:
    small = make_server(max_body_bytes=2048)
    big = patient(text={"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">"
                        + "x" * 5000 + "</div>"})
    response = httpx.post(f"{small.url}/Patient", json=big, headers=fhir_headers(), auth=small.auth)
    _outcome(response, 413)


def test_database_unreachable_is_503_and_nothing_written(make_server) -> None:
    from fhir_server.storage.embedded import MEMORY, EmbeddedDatabase

    database = EmbeddedDatabase(MEMORY)
    uri = database.start()
    from fhir_server.config import Settings
    from tests.conftest import start_live_server

    live: LiveServer = start_live_server(Settings(mongodb_uri=uri, database_name="outage", db_timeout_ms=800))
    try:
        assert httpx.post(f"{live.url}/Patient", json=patient(), headers=fhir_headers(),
                          auth=live.auth).status_code == 201
        database.stop()
        response = httpx.post(f"{live.url}/Patient", json=patient(), headers=fhir_headers(), timeout=30,
                              auth=live.auth)  # the token was fetched while the database was up
        body = _outcome(response, 503)
        assert body["issue"][0]["code"] == "transient"
        assert httpx.get(f"{live.url}/readyz").status_code == 503
        assert httpx.get(f"{live.url}/healthz").status_code == 200
    finally:
        live.stop()
        database.stop()
