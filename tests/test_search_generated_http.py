"""Table-driven search over HTTP on generated data, for what the official examples do not
exercise: uri :above/:below, absolute and :identifier references, token :of-type and :in, the
common parameters (_lastUpdated, _profile, _security, _source, _tag), :missing on other types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fhir_data import fhir_headers


@pytest.fixture(scope="module")
def data(make_server) -> dict:
    server = make_server()
    http = httpx.Client(base_url=server.url, auth=server.auth, timeout=60)

    def create(resource: dict) -> str:
        response = http.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
        assert response.status_code == 201, response.text
        return response.json()["id"]

    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = {
        "vs1": create({"resourceType": "ValueSet", "status": "active", "url": "http://acme.org/fhir/ValueSet/a"}),
        "vs2": create({"resourceType": "ValueSet", "status": "active",
                       "url": "http://acme.org/fhir/ValueSet/a/b"}),
        "vs3": create({"resourceType": "ValueSet", "status": "draft", "url": "http://other.org/ValueSet/c"}),
        "p1": create({"resourceType": "Patient", "gender": "male",
                      "meta": {"profile": ["http://acme.org/StructureDefinition/p"],
                               "security": [{"system": "urn:sec", "code": "R"}], "source": "urn:src:1"},
                      "identifier": [{"type": {"coding": [{"system": "urn:t", "code": "MR"}]},
                                      "system": "urn:mrn", "value": "m1"}],
                      "generalPractitioner": [{"reference": "http://elsewhere.org/fhir/Practitioner/9"}]}),
        "p2": create({"resourceType": "Patient", "gender": "female",
                      "generalPractitioner": [{"identifier": {"system": "urn:npi", "value": "77"}}]}),
    }
    ids["before"] = before
    yield http, ids
    http.close()


CASES = [
    ("ValueSet", "url=http://acme.org/fhir/ValueSet/a", {"vs1"}),
    ("ValueSet", "url:below=http://acme.org/fhir", {"vs1", "vs2"}),
    ("ValueSet", "url:above=http://acme.org/fhir/ValueSet/a/b/c", {"vs1", "vs2"}),
    ("ValueSet", "status=draft", {"vs3"}),
    ("Patient", "general-practitioner=http://elsewhere.org/fhir/Practitioner/9", {"p1"}),
    ("Patient", "general-practitioner:identifier=urn:npi|77", {"p2"}),
    ("Patient", "general-practitioner:missing=true", set()),
    ("Patient", "identifier:of-type=urn:t|MR|m1", {"p1"}),
    ("Patient", "gender:in=http://hl7.org/fhir/ValueSet/administrative-gender", {"p1", "p2"}),
    ("Patient", "gender:not-in=http://hl7.org/fhir/ValueSet/administrative-gender", set()),
    ("Patient", "_profile=http://acme.org/StructureDefinition/p", {"p1"}),
    ("Patient", "_security=urn:sec|R", {"p1"}),
    ("Patient", "_source=urn:src:1", {"p1"}),
    ("Patient", "_source:missing=true", {"p2"}),
]


@pytest.mark.parametrize(("resource_type", "query", "expected"), CASES, ids=[f"{t}?{q}" for t, q, _ in CASES])
def test_search_generated(data, resource_type: str, query: str, expected: set[str]) -> None:
    http, ids = data
    response = http.get(f"/{resource_type}?{query}", headers={"Prefer": "handling=strict"})
    assert response.status_code == 200, response.text
    found = {e["resource"]["id"] for e in response.json().get("entry", [])}
    assert found == {ids[name] for name in expected}


def test_last_updated(data) -> None:
    http, ids = data
    since = ids["before"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert http.get(f"/Patient?_lastUpdated=lt{since}").json()["total"] == 0
    assert http.get(f"/Patient?_lastUpdated=ge{since}").json()["total"] == 2
    newest = http.get("/Patient?_sort=-_lastUpdated&_count=1").json()["entry"][0]["resource"]["id"]
    assert newest == ids["p2"]
