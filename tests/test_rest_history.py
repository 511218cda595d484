"""History at instance, type and system level: Bundle shape, order, _count, _since, _at, paging."""

from __future__ import annotations

import time

import httpx

from tests.fhir_data import fhir_headers, patient


def _make_versions(client: httpx.Client, count: int) -> dict:
    created = client.post("/Patient", json=patient(), headers=fhir_headers()).json()
    for n in range(count - 1):
        body = {**created, "gender": ["male", "female", "other"][n % 3]}
        assert client.put(f"/Patient/{created['id']}", json=body, headers=fhir_headers()).status_code == 200
    return created


def _follow(client: httpx.Client, url: str, relation: str = "next") -> list[dict]:
    pages = []
    while url:
        bundle = client.get(url).json()
        pages.append(bundle)
        url = next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)
    return pages


def test_instance_history_bundle_shape(client: httpx.Client, server) -> None:
    created = _make_versions(client, 3)
    client.delete(f"/Patient/{created['id']}")
    bundle = client.get(f"/Patient/{created['id']}/_history").json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    assert bundle["total"] == 4
    entries = bundle["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert entries[0]["request"] == {"method": "DELETE", "url": f"Patient/{created['id']}"}
    assert "resource" not in entries[0]
    assert entries[-1]["request"] == {"method": "POST", "url": "Patient"}
    assert entries[-1]["response"]["status"].startswith("201")
    assert entries[1]["resource"]["meta"]["versionId"] == "3"
    assert all(e["fullUrl"] == f"{server.url}/Patient/{created['id']}" for e in entries)
    assert all(e["response"]["lastModified"].endswith("Z") for e in entries)


def test_history_paging_visits_every_version_once_in_both_directions(client: httpx.Client) -> None:
    created = _make_versions(client, 7)
    pages = _follow(client, f"/Patient/{created['id']}/_history?_count=3")
    assert [len(p["entry"]) for p in pages] == [3, 3, 1]
    versions = [e["resource"]["meta"]["versionId"] for p in pages for e in p["entry"]]
    assert versions == ["7", "6", "5", "4", "3", "2", "1"]
    last_self = next(link["url"] for link in pages[-1]["link"] if link["relation"] == "self")
    back = _follow(client, last_self, "previous")
    assert [[e["resource"]["meta"]["versionId"] for e in p["entry"]] for p in back] == [
        ["1"], ["4", "3", "2"], ["7", "6", "5"]]


def test_paging_is_stable_while_new_versions_arrive(client: httpx.Client) -> None:
    created = _make_versions(client, 4)
    first = client.get(f"/Patient/{created['id']}/_history?_count=2").json()
    _make_versions_of = {**created, "gender": "unknown"}
    client.put(f"/Patient/{created['id']}", json=_make_versions_of, headers=fhir_headers())
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(next_url).json()
    assert [e["response"]["etag"] for e in first["entry"] + second["entry"]] == [
        'W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']


def test_type_and_system_history_include_new_changes_newest_first(client: httpx.Client) -> None:
    before = client.get("/Patient/_history?_count=1").json()
    marker = client.post("/Patient", json=patient(), headers=fhir_headers()).json()
    other = client.post("/Observation", json={"resourceType": "Observation", "status": "final",
                                              "code": {"text": "x"}}, headers=fhir_headers()).json()
    type_history = client.get("/Patient/_history?_count=5").json()
    assert type_history["entry"][0]["resource"]["id"] == marker["id"]
    assert all(e["fullUrl"].split("/")[-2] == "Patient" for e in type_history["entry"])
    system = client.get("/_history?_count=2").json()
    assert [e["resource"]["id"] for e in system["entry"]] == [other["id"], marker["id"]]
    assert before["type"] == "history"


def test_since_and_at(client: httpx.Client) -> None:
    created = _make_versions(client, 2)
    time.sleep(0.05)
    middle = client.get(f"/Patient/{created['id']}").json()["meta"]["lastUpdated"]
    time.sleep(0.05)
    client.put(f"/Patient/{created['id']}", json={**created, "gender": "unknown"}, headers=fhir_headers())
    since = client.get(f"/Patient/{created['id']}/_history", params={"_since": middle}).json()
    assert [e["response"]["etag"] for e in since["entry"]] == ['W/"3"', 'W/"2"']
    at = client.get(f"/Patient/{created['id']}/_history", params={"_at": middle}).json()
    assert [e["response"]["etag"] for e in at["entry"]] == ['W/"2"']


def test_history_rejects_malformed_parameters(client: httpx.Client) -> None:
    for query in ("_count=-1", "_count=x", "_since=yesterday", "_at=2020-13", "_cursor=%%%"):
        response = client.get(f"/Patient/_history?{query}")
        assert response.status_code == 400, query
        assert response.json()["resourceType"] == "OperationOutcome"
