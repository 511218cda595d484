"""Conditional create, update, delete and patch: 0, 1 and many matches as http.html says."""

from __future__ import annotations

import concurrent.futures

import httpx

from tests.fhir_data import fhir_headers, patient, unique


def _criteria(resource: dict) -> str:
    identifier = resource["identifier"][0]
    return f"identifier={identifier['system']}|{identifier['value']}"


def test_conditional_create(client: httpx.Client) -> None:
    resource = patient()
    headers = fhir_headers(**{"If-None-Exist": _criteria(resource)})
    first = client.post("/Patient", json=resource, headers=headers)
    assert first.status_code == 201
    again = client.post("/Patient", json=resource, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    by_id = client.post("/Patient", json=resource,
                        headers=fhir_headers(**{"If-None-Exist": f"_id={first.json()['id']}"}))
    assert by_id.status_code == 200


def test_conditional_create_many_matches_is_412(client: httpx.Client) -> None:
    value = unique("shared")
    for _ in range(2):
        client.post("/Patient", json=patient(identifier=[{"system": "urn:s", "value": value}]), headers=fhir_headers())
    response = client.post("/Patient", json=patient(),
                           headers=fhir_headers(**{"If-None-Exist": f"identifier=urn:s|{value}"}))
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "multiple-matches"


def test_racing_conditional_creates_make_one_resource(server) -> None:
    resource = patient()
    headers = fhir_headers(**{"If-None-Exist": _criteria(resource)})

    def post(_: int) -> int:
        with httpx.Client(base_url=server.url, auth=server.auth, timeout=60) as http:
            return http.post("/Patient", json=resource, headers=headers).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(post, range(6)))
    assert statuses == [200] * 5 + [201]


def test_conditional_update(client: httpx.Client) -> None:
    resource = patient()
    created = client.put(f"/Patient?{_criteria(resource)}", json=resource, headers=fhir_headers())
    assert created.status_code == 201
    updated = client.put(f"/Patient?{_criteria(resource)}", json={**resource, "gender": "other"},
                         headers=fhir_headers())
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"] and updated.json()["meta"]["versionId"] == "2"
    wrong_id = client.put(f"/Patient?{_criteria(resource)}", json={**resource, "id": "someone-else"},
                          headers=fhir_headers())
    assert wrong_id.status_code == 400


def test_conditional_update_with_client_id_and_no_match_creates_that_id(client: httpx.Client) -> None:
    resource = patient(id=unique("cid"))
    response = client.put(f"/Patient?{_criteria(resource)}", json=resource, headers=fhir_headers())
    assert response.status_code == 201 and response.json()["id"] == resource["id"]


def test_conditional_delete(client: httpx.Client) -> None:
    resource = client.post("/Patient", json=patient(), headers=fhir_headers()).json()
    assert client.delete(f"/Patient?{_criteria(resource)}").status_code == 204
    assert client.get(f"/Patient/{resource['id']}").status_code == 410
    assert client.delete(f"/Patient?{_criteria(resource)}").status_code == 204
    value = unique("dup")
    for _ in range(2):
        client.post("/Patient", json=patient(identifier=[{"system": "urn:d", "value": value}]), headers=fhir_headers())
    assert client.delete(f"/Patient?identifier=urn:d|{value}").status_code == 412


def test_conditional_without_criteria_or_with_unknown_parameter_is_400(client: httpx.Client) -> None:
    assert client.put("/Patient", json=patient(), headers=fhir_headers()).status_code == 400
    assert client.delete("/Patient").status_code == 400
