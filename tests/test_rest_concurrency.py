"""Optimistic concurrency: racing writers never lose an update."""

from __future__ import annotations

import concurrent.futures

import httpx

from tests.fhir_data import fhir_headers, patient


def test_racing_puts_with_same_if_match_exactly_one_wins(server, client: httpx.Client) -> None:
    for _ in range(3):
        created = client.post("/Patient", json=patient(), headers=fhir_headers()).json()

        def put(gender: str, created: dict = created) -> int:
            with httpx.Client(base_url=server.url, auth=server.auth, timeout=60) as http:
                return http.put(f"/Patient/{created['id']}", json={**created, "gender": gender},
                                headers=fhir_headers(**{"If-Match": 'W/"1"'})).status_code

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(put, ["male", "other"]))
        assert statuses == [200, 412]
        assert client.get(f"/Patient/{created['id']}").json()["meta"]["versionId"] == "2"


def test_concurrent_unconditional_updates_each_get_a_version(server, client: httpx.Client) -> None:
    created = client.post("/Patient", json=patient(), headers=fhir_headers()).json()
    writers = 8

    def put(n: int) -> int:
        with httpx.Client(base_url=server.url, auth=server.auth, timeout=60) as http:
            body = {**created, "name": [{"family": f"Writer{n}"}]}
            return http.put(f"/Patient/{created['id']}", json=body, headers=fhir_headers()).status_code

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        assert list(pool.map(put, range(writers))) == [200] * writers
    history = client.get(f"/Patient/{created['id']}/_history").json()
    assert history["total"] == writers + 1
    assert sorted(int(e["resource"]["meta"]["versionId"]) for e in history["entry"]) == list(range(1, writers + 2))
