"""Formats: Accept, _format, _pretty, request content types (http.html#mime-type)."""

from __future__ import annotations

import httpx
import pytest

from tests.fhir_data import fhir_headers, patient


@pytest.fixture
def patient_url(client: httpx.Client) -> str:
    return f"/Patient/{client.post('/Patient', json=patient(), headers=fhir_headers()).json()['id']}"


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "application/fhir+json"),
    ("application/fhir+json", "application/fhir+json"),
    ("application/json", "application/json"),
    ("*/*", "application/fhir+json"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/fhir+json"),
    ("application/fhir+json; fhirVersion=4.0", "application/fhir+json"),
])
def test_accept_header_chooses_json_flavour(server, patient_url: str, accept: str | None, expected: str) -> None:
    headers = {"Accept": accept} if accept else {}
    response = httpx.get(server.url + patient_url, headers=headers, auth=server.auth)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == f"{expected}; charset=utf-8"


@pytest.mark.parametrize("accept", ["application/fhir+xml", "application/xml", "text/turtle",
                                    "application/fhir+json; fhirVersion=3.0"])
def test_unsupported_accept_is_406(server, patient_url: str, accept: str) -> None:
    response = httpx.get(server.url + patient_url, headers={"Accept": accept}, auth=server.auth)
    assert response.status_code == 406
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(("value", "status"), [("json", 200), ("application/fhir+json", 200),
                                                ("application/json", 200), ("xml", 406), ("ttl", 406)])
def test_format_parameter(client: httpx.Client, patient_url: str, value: str, status: int) -> None:
    assert client.get(patient_url, params={"_format": value}).status_code == status


def test_pretty(client: httpx.Client, patient_url: str) -> None:
    assert b"\n  " in client.get(patient_url, params={"_pretty": "true"}).content
    assert b"\n" not in client.get(patient_url).content


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "application/fhir+xml",
                                          "application/x-www-form-urlencoded", "application/json; charset=latin-1"])
def test_unsupported_content_type_is_415(client: httpx.Client, content_type: str) -> None:
    response = client.post("/Patient", content=b'{"resourceType":"Patient"}', headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.json()["resourceType"] == "OperationOutcome"


def test_plain_json_content_type_is_accepted(client: httpx.Client) -> None:
    response = client.post("/Patient", json=patient(), headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201
