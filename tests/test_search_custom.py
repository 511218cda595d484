"""Custom SearchParameters become searchable when stored, stop being so when deleted, and
`$reindex` indexes resources stored before the parameter existed; another server process on the
same database follows every change without a restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from fhir_server.interactions.search_parameters import Follower
from fhir_server.search.registry import registry
from fhir_server.storage import Database, ResourceStore, Version
from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient, unique
from tests.test_cli_serve import _free_port, _stop, _wait_ready

STRICT = {"Prefer": "handling=strict"}


def _search_parameter(code: str, expression: str = "Patient.maritalStatus", **fields) -> dict:
    return {"resourceType": "SearchParameter", "url": f"urn:test:sp:{code}", "name": code, "status": "active",
            "description": "test parameter", "code": code, "base": ["Patient"], "type": "token",
            "expression": expression, **fields}


def _ids(bundle: dict) -> list[str]:
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match")


def test_custom_parameter_lifecycle_with_reindex(client: httpx.Client) -> None:
    code, status = unique("ms").lower(), unique("S")
    marital = {"coding": [{"system": "urn:ms", "code": status}]}
    before = client.post("/Patient", json=patient(maritalStatus=marital), headers=fhir_headers()).json()
    created = client.post("/SearchParameter", json=_search_parameter(code), headers=fhir_headers())
    assert created.status_code == 201, created.text
    after = client.post("/Patient", json=patient(maritalStatus=marital), headers=fhir_headers()).json()
    url = f"/Patient?{code}=urn:ms|{status}"
    assert _ids(client.get(url, headers={"Prefer": "handling=strict"}).json()) == [after["id"]]
    reindexed = client.post("/Patient/$reindex")
    assert reindexed.status_code == 200, reindexed.text
    counts = {p["part"][0]["valueCode"]: p["part"][1]["valueInteger"] for p in reindexed.json()["parameter"]}
    assert counts["Patient"] >= 1
    assert _ids(client.get(url).json()) == sorted([before["id"], after["id"]])
    statement = client.get("/metadata").json()
    patient_params = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")["searchParam"]
    assert code in {p["name"] for p in patient_params}
    assert client.delete(f"/SearchParameter/{created.json()['id']}").status_code == 204
    assert client.get(url, headers={"Prefer": "handling=strict"}).status_code == 400


def test_updating_a_parameter_changes_what_it_indexes(client: httpx.Client) -> None:
    code = unique("lang").lower()
    language = unique("xx")
    created = client.post("/SearchParameter", json=_search_parameter(code, "Patient.gender"),
                          headers=fhir_headers()).json()
    changed = {**created, "expression": "Patient.communication.language"}
    assert client.put(f"/SearchParameter/{created['id']}", json=changed, headers=fhir_headers()).status_code == 200
    speaker = client.post("/Patient", json=patient(communication=[{"language": {"coding": [
        {"system": "urn:lang", "code": language}]}}]), headers=fhir_headers()).json()
    assert _ids(client.get(f"/Patient?{code}=urn:lang|{language}").json()) == [speaker["id"]]
    client.delete(f"/SearchParameter/{created['id']}")


def test_unusable_definitions_are_refused(client: httpx.Client) -> None:
    broken = client.post("/SearchParameter", json=_search_parameter(unique("b").lower(), "Patient.name.where("),
                         headers=fhir_headers())
    assert broken.status_code == 422 and "expression" in str(broken.json()["issue"])
    no_base = client.post("/SearchParameter", json=_search_parameter(unique("b").lower(), base=["Nope"]),
                          headers=fhir_headers())
    assert no_base.status_code in (400, 422)


def test_system_reindex_and_get_is_refused(client: httpx.Client) -> None:
    reindexed = client.post("/$reindex")
    assert reindexed.status_code == 200, reindexed.text
    # The full-access token may read but not update the audit trail: that index is left alone.
    assert [p["valueCode"] for p in reindexed.json()["parameter"] if p["name"] == "skipped"] == ["AuditEvent"]
    assert client.get("/$reindex").status_code == 405


@pytest.fixture(scope="module")
def writer_server(make_server: Callable[..., LiveServer]) -> LiveServer:
    """A server in this process, on a database of its own."""
    return make_server()


@pytest.fixture
def writer(writer_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=writer_server.url, auth=writer_server.auth, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def reader(writer_server: LiveServer, mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[httpx.Client]:
    """A second `fhir-server serve` process on the writer's database, checking for changes on every request."""
    logs, port = tmp_path_factory.mktemp("reader"), _free_port()
    env = {**os.environ, "MONGODB_URI": mongodb_uri, "FHIR_DATABASE": writer_server.settings.database_name,
           "FHIR_SEARCH_PARAMETER_REFRESH_SECONDS": "0"}
    process = subprocess.Popen([sys.executable, "-m", "fhir_server", "serve", "--port", str(port),
                                "--insecure-no-auth", "--data-dir", str(logs / "data")],
                               stdout=(logs / "serve.log").open("ab"), stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            yield http
    finally:
        _stop(process)


def _capability_codes(client: httpx.Client, resource_type: str) -> set[str]:
    statement = client.get("/metadata").json()
    resource = next(r for r in statement["rest"][0]["resource"] if r["type"] == resource_type)
    return {p["name"] for p in resource["searchParam"]}


def test_another_process_follows_creates_updates_and_deletes(writer: httpx.Client, reader: httpx.Client) -> None:
    code, status = unique("ms").lower(), unique("S")
    assert reader.get(f"/Patient?{code}=x", headers=STRICT).status_code == 400
    created = writer.post("/SearchParameter", json=_search_parameter(code), headers=fhir_headers()).json()

    # The reader indexes what it stores with the new parameter and searches with it.
    marital = {"coding": [{"system": "urn:ms", "code": status}]}
    stored = reader.post("/Patient", json=patient(maritalStatus=marital), headers=fhir_headers()).json()
    assert _ids(reader.get(f"/Patient?{code}=urn:ms|{status}", headers=STRICT).json()) == [stored["id"]]
    assert _ids(writer.get(f"/Patient?{code}=urn:ms|{status}", headers=STRICT).json()) == [stored["id"]]
    assert code in _capability_codes(reader, "Patient")

    # An update changes the type and the expression: the reader parses and indexes the new way.
    family = unique("Fam")
    changed = {**created, "type": "string", "expression": "Patient.name.family"}
    assert writer.put(f"/SearchParameter/{created['id']}", json=changed, headers=fhir_headers()).status_code == 200
    named = reader.post("/Patient", json=patient(name=[{"family": family}]), headers=fhir_headers()).json()
    assert _ids(reader.get(f"/Patient?{code}:exact={family}", headers=STRICT).json()) == [named["id"]]

    assert writer.delete(f"/SearchParameter/{created['id']}").status_code == 204
    assert reader.get(f"/Patient?{code}:exact={family}", headers=STRICT).status_code == 400
    assert code not in _capability_codes(reader, "Patient")


def test_a_failed_transaction_leaves_no_parameter_registered(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(search_parameter_refresh_seconds=0)
    code = unique("tx").lower()
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _search_parameter(code), "request": {"method": "POST", "url": "SearchParameter"}},
        # Version 7 of a resource that does not exist: 412, and the whole transaction is rolled back.
        {"resource": patient(), "request": {"method": "PUT", "url": f"Patient/{unique()}", "ifMatch": 'W/"7"'}}]}
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60) as http:
        failed = http.post("/", json=bundle, headers=fhir_headers())
        assert failed.status_code >= 400, failed.text
        assert http.get(f"/Patient?{code}=x", headers=STRICT).status_code == 400


def test_a_rolled_back_write_is_replaced_by_what_another_process_committed(writer: httpx.Client,
                                                                           reader: httpx.Client) -> None:
    resource_id, phantom, kept = unique("sp"), unique("ph").lower(), unique("kp").lower()
    put = {"method": "PUT", "url": f"SearchParameter/{resource_id}"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {**_search_parameter(phantom), "id": resource_id}, "request": put},
        {"resource": patient(), "request": {"method": "PUT", "url": f"Patient/{unique()}", "ifMatch": 'W/"7"'}}]}
    assert reader.post("/", json=bundle, headers=fhir_headers()).status_code >= 400
    # Version 1 of the same resource, as committed by the other process before the reader looks again.
    committed = writer.put(f"/SearchParameter/{resource_id}", json={**_search_parameter(kept), "id": resource_id},
                           headers=fhir_headers())
    assert committed.status_code == 201, committed.text
    assert reader.get(f"/Patient?{phantom}=x", headers=STRICT).status_code == 400
    assert reader.get(f"/Patient?{kept}=x", headers=STRICT).status_code == 200
    writer.delete(f"/SearchParameter/{resource_id}")


def test_changes_are_checked_for_at_most_once_per_interval(mongodb_uri: str) -> None:
    code = unique("iv").lower()

    async def scenario() -> None:
        database = Database(mongodb_uri, f"fhir_test_{unique('iv')[3:]}")
        store, follower = ResourceStore(database), Follower(database)
        await follower.sync()
        await follower.refresh(60)
        # Stored the way another process stores it: this process's follower is not told.
        created = await database.transaction(lambda s: store.create(s, "SearchParameter", _search_parameter(code)))
        await follower.refresh(60)
        assert registry().get("Patient", code) is None
        await asyncio.sleep(1.1)
        await follower.refresh(1)
        assert registry().get("Patient", code) is not None
        await database.transaction(lambda s: store.delete(s, "SearchParameter", created.id))
        await follower.refresh(0)
        assert registry().get("Patient", code) is None
        await database.close()

    asyncio.run(scenario())


def test_refresh_keeps_the_registry_when_the_database_is_unreachable() -> None:
    code = unique("down").lower()
    definition = {**_search_parameter(code), "id": code}
    unreachable = Database(f"mongodb://127.0.0.1:{_free_port()}", "fhir", timeout_ms=200)
    follower = Follower(unreachable)
    follower.apply(Version("SearchParameter", code, 1, datetime.now(UTC), definition))

    async def refresh_and_close() -> None:
        await follower.refresh(0)
        await unreachable.close()

    try:
        asyncio.run(refresh_and_close())
        assert registry().get("Patient", code) is not None
    finally:
        follower.apply(Version("SearchParameter", code, 2, datetime.now(UTC), None))
    assert registry().get("Patient", code) is None
