"""AuditEvents: their BALP shape per interaction kind, durability, the hash chain and its tools."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
from pymongo import MongoClient

from fhir_server.audit.collections import CHAIN, OUTBOX, RESOURCE_TYPE
from fhir_server.config import Settings
from tests.conftest import LiveServer, start_live_server
from tests.fhir_data import fhir_headers, patient, unique

RESTFUL = "http://hl7.org/fhir/restful-interaction"


@pytest.fixture(scope="module")
def mongo(mongodb_uri: str) -> Iterator[MongoClient]:
    client: MongoClient = MongoClient(mongodb_uri, tz_aware=True)
    yield client
    client.close()


def events_for(mongo: MongoClient, server: LiveServer, request_id: str, expected: int = 1) -> list[dict]:
    """The AuditEvents recorded for one request id, waiting briefly for writes' outbox to be sealed."""
    collection = mongo[server.settings.database_name][RESOURCE_TYPE]
    query = {"res.entity.what.identifier.value": request_id}
    deadline = time.monotonic() + 10
    while True:
        events = [d["res"] for d in collection.find(query)]
        if len(events) >= expected or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def coded(codeable: dict) -> set[str]:
    return {c["code"] for c in codeable.get("coding", [codeable])}


def entity_roles(event: dict) -> dict[str, str]:
    """role code -> what (reference, or identifier value) for each entity."""
    out = {}
    for entity in event.get("entity", []):
        what = entity.get("what", {})
        role = entity.get("role", {}).get("code") or entity["type"]["code"]
        out[role] = what.get("reference") or what.get("identifier", {}).get("value")
    return out


def test_read_is_on_record_before_the_response(client: httpx.Client, server: LiveServer,
                                               mongo: MongoClient) -> None:
    created = client.post("/Patient", json=patient(), headers=fhir_headers()).json()
    request_id = unique("durable")
    client.get(f"/Patient/{created['id']}", headers={"X-Request-Id": request_id})
    database = mongo[server.settings.database_name]
    recorded = {"request_id": request_id}
    sealed = {"res.entity.what.identifier.value": request_id}
    assert database[OUTBOX].count_documents(recorded) + database[RESOURCE_TYPE].count_documents(sealed) >= 1


def test_read_event_shape(client: httpx.Client, server: LiveServer, mongo: MongoClient) -> None:
    created = client.post("/Patient", json=patient(), headers=fhir_headers()).json()
    request_id = unique("read")
    response = client.get(f"/Patient/{created['id']}", headers={"X-Request-Id": request_id})
    assert response.headers["X-Request-Id"] == request_id
    [event] = events_for(mongo, server, request_id)
    assert event["type"] == {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
                             "display": "Restful Operation"}
    assert event["subtype"] == [{"system": RESTFUL, "code": "read"}]
    assert event["action"] == "R" and event["outcome"] == "0"
    agents = {next(iter(coded(a["type"]))): a for a in event["agent"]}
    assert agents["110153"]["network"] == {"address": "127.0.0.1", "type": "2"}
    assert agents["110153"]["requestor"] is False
    assert agents["110152"]["network"]["address"] == server.url
    assert event["source"]["type"][0]["code"] == "4"
    roles = entity_roles(event)
    assert roles["4"] == f"Patient/{created['id']}/_history/1"
    assert roles["1"] == f"Patient/{created['id']}"
    assert roles["XrequestId"] == request_id
    assert any(ext["url"].endswith("audit-chain") for ext in event["extension"])


@pytest.mark.parametrize(("method", "code", "action"), [
    ("POST", "create", "C"), ("PUT", "update", "U"), ("PATCH", "patch", "U"), ("DELETE", "delete", "D")])
def test_write_events_name_the_version_and_patient(client: httpx.Client, server: LiveServer, mongo: MongoClient,
                                                   method: str, code: str, action: str) -> None:
    existing = client.post("/Patient", json=patient(), headers=fhir_headers()).json()
    request_id = unique(code)
    headers = fhir_headers(**{"X-Request-Id": request_id})
    url = "/Patient" if method == "POST" else f"/Patient/{existing['id']}"
    body = {"POST": patient(), "PUT": existing, "DELETE": None,
            "PATCH": [{"op": "replace", "path": "/gender", "value": "other"}]}[method]
    if method == "PATCH":
        headers["Content-Type"] = "application/json-patch+json"
    response = client.request(method, url, json=body, headers=headers)
    assert response.status_code < 300
    [event] = events_for(mongo, server, request_id)
    assert event["subtype"][0]["code"] == code and event["action"] == action and event["outcome"] == "0"
    resource_id = response.json()["id"] if method == "POST" else existing["id"]
    version = response.headers["ETag"].split('"')[1]
    roles = entity_roles(event)
    assert roles["4"] == f"Patient/{resource_id}/_history/{version}"
    assert roles["1"] == f"Patient/{resource_id}"


def test_failures_and_refusals_are_recorded(client: httpx.Client, server: LiveServer, mongo: MongoClient) -> None:
    missing = unique("missing")
    client.get(f"/Patient/{missing}", headers={"X-Request-Id": missing})
    [event] = events_for(mongo, server, missing)
    assert event["outcome"] == "4" and "not known" in event["outcomeDesc"]
    assert entity_roles(event)["4"] == f"Patient/{missing}"
    refused = unique("refused")
    response = client.post("/Patient", content=b"<Patient/>", headers={"Content-Type": "application/xml",
                                                                       "X-Request-Id": refused})
    assert response.status_code == 415
    [event] = events_for(mongo, server, refused)
    assert event["subtype"][0]["code"] == "create" and event["outcome"] == "4"


def test_an_interaction_touching_several_patients_gives_one_event_each(
        client: httpx.Client, server: LiveServer, mongo: MongoClient) -> None:
    ids = [client.post("/Patient", json=patient(), headers=fhir_headers()).json()["id"] for _ in range(2)]
    request_id = unique("history")
    client.get("/Patient/_history", params={"_count": 2}, headers={"X-Request-Id": request_id})
    events = events_for(mongo, server, request_id, expected=2)
    assert sorted(entity_roles(e)["1"] for e in events) == sorted(f"Patient/{i}" for i in ids)
    assert all(e["subtype"][0]["code"] == "history-type" for e in events)
    query = next(ent for ent in events[0]["entity"] if ent["role"]["code"] == "24")
    assert query["query"]


def test_request_id_is_generated_when_absent_or_unsafe(client: httpx.Client) -> None:
    generated = client.get("/metadata").headers["X-Request-Id"]
    assert len(generated) >= 16
    replaced = client.get("/metadata", headers={"X-Request-Id": "bad id\twith spaces"}).headers["X-Request-Id"]
    assert replaced != "bad id\twith spaces"


def test_outbox_records_left_by_a_crash_are_sealed(server: LiveServer, mongo: MongoClient) -> None:
    from fhir_server.audit.log import record_document
    from fhir_server.audit.record import AuditRecord
    from fhir_server.fhir.primitives import now

    request_id = unique("recovered")
    record = AuditRecord("rest", "update", "U", now(), resources=("Patient/x/_history/2",), request_id=request_id)
    mongo[server.settings.database_name][OUTBOX].insert_one(record_document(record))
    [event] = events_for(mongo, server, request_id)
    assert event["action"] == "U"


def _cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MONGODB_URI": server.settings.mongodb_uri, "FHIR_DATABASE": server.settings.database_name}
    return subprocess.run([sys.executable, "-m", "fhir_server", "audit", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def audited(make_server) -> LiveServer:
    """A server of its own, so tampering with its trail disturbs no other test."""
    live = make_server()
    for _ in range(3):
        created = httpx.post(f"{live.url}/Patient", json=patient(), headers=fhir_headers(), auth=live.auth).json()
        httpx.get(f"{live.url}/Patient/{created['id']}", auth=live.auth)
    return live


def _wait_sealed(mongo: MongoClient, live: LiveServer) -> None:
    database = mongo[live.settings.database_name]
    deadline = time.monotonic() + 10
    while database[OUTBOX].count_documents({}) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_chain_verification_detects_an_edited_event(audited: LiveServer, mongo: MongoClient) -> None:
    _wait_sealed(mongo, audited)
    result = _cli(audited, "verify")
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout
    links = mongo[audited.settings.database_name][CHAIN]
    victim = links.find_one({"_id": 3})
    mongo[audited.settings.database_name][RESOURCE_TYPE].update_one({"_id": victim["e"]},
                                                                     {"$set": {"res.outcome": "12"}})
    broken = _cli(audited, "verify")
    assert broken.returncode == 1
    assert "#3" in broken.stderr and "altered" in broken.stderr


def test_chain_verification_detects_a_deleted_event(audited: LiveServer, mongo: MongoClient) -> None:
    _wait_sealed(mongo, audited)
    database = mongo[audited.settings.database_name]
    database[RESOURCE_TYPE].delete_one({"_id": database[CHAIN].find_one({"_id": 2})["e"]})
    broken = _cli(audited, "verify")
    assert broken.returncode == 1 and "#2 is missing" in broken.stderr


def test_retention_pruning_keeps_the_chain_verifiable(audited: LiveServer, mongo: MongoClient) -> None:
    _wait_sealed(mongo, audited)
    before = mongo[audited.settings.database_name][CHAIN].count_documents({})
    pruned = _cli(audited, "prune", "--before", "2999-01-01")
    assert pruned.returncode == 0 and f"pruned {before}" in pruned.stdout
    httpx.get(f"{audited.url}/metadata")
    result = _cli(audited, "verify")
    assert result.returncode == 0, result.stderr


def test_export_ndjson_and_csv(audited: LiveServer, mongo: MongoClient, tmp_path) -> None:
    _wait_sealed(mongo, audited)
    count = mongo[audited.settings.database_name][CHAIN].count_documents({})
    ndjson = _cli(audited, "export", "--since", "2000", "--until", "2999", "--format", "ndjson")
    lines = ndjson.stdout.splitlines()
    assert len(lines) == count and all('"resourceType":"AuditEvent"' in line for line in lines)
    target = tmp_path / "audit.csv"
    _cli(audited, "export", "--since", "2000", "--until", "2999", "--format", "csv", "--output", str(target))
    rows = target.read_text().splitlines()
    assert rows[0].startswith("sequence,recorded,type") and len(rows) == count + 1


def test_unwritable_audit_store_fails_closed_unless_fail_open(make_server, mongo: MongoClient) -> None:
    for fail_open, expected in ((False, 503), (True, 200)):
        live = make_server(audit_fail_open=fail_open)
        database = mongo[live.settings.database_name]
        database.drop_collection(OUTBOX)  # recreated refusing every record: the audit store is unwritable
        database.create_collection(OUTBOX, validator={"$jsonSchema": {"required": ["impossible"]}})
        response = httpx.get(f"{live.url}/metadata", timeout=60)
        assert response.status_code == expected
        if expected == 503:
            assert "audit" in response.json()["issue"][0]["diagnostics"]


def test_verify_chain_operation_reports_intact_then_the_first_broken_link(audited: LiveServer,
                                                                          mongo: MongoClient) -> None:
    _wait_sealed(mongo, audited)
    intact = httpx.get(f"{audited.url}/AuditEvent/$verify-chain", auth=audited.auth)
    assert intact.status_code == 200
    assert intact.json()["issue"][0]["severity"] == "information"
    assert "intact" in intact.json()["issue"][0]["diagnostics"]
    database = mongo[audited.settings.database_name]
    victim = database[CHAIN].find_one({"_id": 2})
    database[RESOURCE_TYPE].update_one({"_id": victim["e"]}, {"$set": {"res.action": "D"}})
    broken = httpx.post(f"{audited.url}/AuditEvent/$verify-chain", auth=audited.auth,
                        json={"resourceType": "Parameters", "parameter": [{"name": "_since", "valueDateTime": "2000"}]},
                        headers=fhir_headers())
    issue = broken.json()["issue"][0]
    assert broken.status_code == 200 and issue["severity"] == "error" and "#2" in issue["diagnostics"]


def test_verify_chain_refuses_malformed_bounds(audited: LiveServer) -> None:
    response = httpx.get(f"{audited.url}/AuditEvent/$verify-chain", auth=audited.auth, params={"_since": "yesterday"})
    assert response.status_code == 400 and response.json()["issue"][0]["expression"] == ["_since"]


def test_export_operation_streams_the_period_as_ndjson(audited: LiveServer, mongo: MongoClient) -> None:
    _wait_sealed(mongo, audited)
    count = mongo[audited.settings.database_name][CHAIN].count_documents({})
    response = httpx.get(f"{audited.url}/AuditEvent/$export", auth=audited.auth,
                         params={"_since": "2000-01-01", "_until": "2999"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    events = [orjson.loads(line) for line in response.text.splitlines()]
    assert len(events) == count and {e["resourceType"] for e in events} == {"AuditEvent"}
    assert httpx.get(f"{audited.url}/AuditEvent/$export", auth=audited.auth, params={"_until": "1990"}).text == ""


def test_audit_operations_are_listed_and_type_bound(audited: LiveServer) -> None:
    statement = httpx.get(f"{audited.url}/metadata").json()
    audit = next(r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert {"verify-chain", "export"} <= {op["name"] for op in audit["operation"]}
    assert httpx.get(f"{audited.url}/Patient/$verify-chain", auth=audited.auth).status_code == 404
    assert httpx.get(f"{audited.url}/$nonsense", auth=audited.auth).status_code == 404


def test_two_servers_on_one_database_seal_one_chain_without_failures(
        mongodb_uri: str, mongo: MongoClient, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(mongodb_uri=mongodb_uri, database_name=f"fhir_test_{uuid.uuid4().hex[:10]}")
    first, second = start_live_server(settings), start_live_server(settings)
    try:
        with caplog.at_level(logging.WARNING, logger="fhir_server.audit.log"):
            # Turns: each server seals on a chain head the other one has moved since.
            for live in (first, second, first, second):
                created = httpx.post(f"{live.url}/Patient", json=patient(), headers=fhir_headers(),
                                     auth=live.auth).json()
                httpx.get(f"{live.url}/Patient/{created['id']}", auth=live.auth)
                _wait_sealed(mongo, live)
        assert not [r for r in caplog.records if "sealing audit events failed" in r.getMessage()]
        assert mongo[settings.database_name][OUTBOX].count_documents({}) == 0
        verified = _cli(first, "verify")
        assert verified.returncode == 0, verified.stderr
    finally:
        first.stop()
        second.stop()
