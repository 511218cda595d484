"""Search over HTTP: Bundle shape, type/POST/compartment/system search, paging while data
changes, _total, _summary, _elements, includes, strict/lenient handling."""

from __future__ import annotations

import httpx
import pytest

from tests.fhir_data import fhir_headers, patient, unique


def _create(client: httpx.Client, resource: dict) -> dict:
    response = client.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
    assert response.status_code == 201, response.text
    return response.json()


def _observation(subject: str, code: str = "8867-4", value: float = 70.0, date: str = "2020-01-01", **fields):
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": subject}, "effectiveDateTime": date,
            "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org",
                              "code": "/min"}, **fields}


def _ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def _link(bundle: dict, relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def _pages(client: httpx.Client, url: str, relation: str = "next") -> list[dict]:
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = _link(pages[-1], relation)
    return pages


def test_type_search_bundle_shape(client: httpx.Client, server) -> None:
    family = unique("Shape")
    created = _create(client, patient(name=[{"family": family}]))
    response = client.get(f"/Patient?family={family}")
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 1
    assert bundle["entry"][0]["fullUrl"] == f"{server.url}/Patient/{created['id']}"
    assert bundle["entry"][0]["search"] == {"mode": "match"}
    assert bundle["entry"][0]["resource"] == created
    assert _link(bundle, "self") == f"{server.url}/Patient?family={family}"


def test_post_search_equals_get(client: httpx.Client) -> None:
    family = unique("Post")
    created = _create(client, patient(name=[{"family": family}]))
    response = client.post("/Patient/_search", data={"family": family},
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert _ids(response.json()) == [created["id"]]
    assert _link(response.json(), "self").endswith(f"/Patient?family={family}")
