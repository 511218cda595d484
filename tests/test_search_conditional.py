"""Conditional create, update, delete and patch with any search criteria (not only identifiers)."""

from __future__ import annotations

import httpx

from tests.fhir_data import fhir_headers, patient, unique


def _create(client: httpx.Client, resource: dict) -> dict:
    response = client.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
    assert response.status_code == 201, response.text
    return response.json()


def test_conditional_create_with_string_and_date_criteria(client: httpx.Client) -> None:
    family = unique("Cond")
    first = _create(client, patient(name=[{"family": family}], birthDate="1971-03-04"))
    headers = fhir_headers(**{"If-None-Exist": f"family={family}&birthdate=1971-03"})
    again = client.post("/Patient", json=patient(name=[{"family": family}]), headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    other = client.post("/Patient", json=patient(name=[{"family": family}]),
                        headers=fhir_headers(**{"If-None-Exist": f"family={family}&birthdate=1972"}))
    assert other.status_code == 201


def test_conditional_update_with_chained_criteria(client: httpx.Client) -> None:
    family = unique("Chain")
    owner = _create(client, patient(name=[{"family": family}]))
    obs = _create(client, {"resourceType": "Observation", "status": "preliminary", "code": {"text": "x"},
                           "subject": {"reference": f"Patient/{owner['id']}"}})
    body = {**obs, "status": "final"}
    del body["id"]
    response = client.put(f"/Observation?subject:Patient.family={family}", json=body, headers=fhir_headers())
    assert response.status_code == 200, response.text
    assert response.json()["id"] == obs["id"] and response.json()["status"] == "final"


def test_conditional_delete_with_has_criteria(client: httpx.Client) -> None:
    code = unique("code")
    target = _create(client, patient())
    _create(client, {"resourceType": "Observation", "status": "final", "code": {"coding": [
        {"system": "urn:c", "code": code}]}, "subject": {"reference": f"Patient/{target['id']}"}})
    response = client.delete(f"/Patient?_has:Observation:subject:code=urn:c|{code}")
    assert response.status_code in (200, 204)
    assert client.get(f"/Patient/{target['id']}").status_code == 410


def test_conditional_patch_with_token_criteria(client: httpx.Client) -> None:
    value = unique("mrn")
    created = _create(client, patient(identifier=[{"system": "urn:x", "value": value}], gender="male"))
    patch = [{"op": "replace", "path": "/gender", "value": "female"}]
    response = client.patch(f"/Patient?identifier=urn:x|{value}&gender=male", json=patch,
                            headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"] and response.json()["gender"] == "female"


def test_conditional_criteria_refuse_unknown_and_malformed_parameters(client: httpx.Client) -> None:
    unknown = client.delete("/Patient?nosuch=1")
    assert unknown.status_code == 400 and "nosuch" in str(unknown.json()["issue"])
    malformed = client.post("/Patient", json=patient(), headers=fhir_headers(**{"If-None-Exist": "birthdate=xx"}))
    assert malformed.status_code == 400 and "birthdate" in str(malformed.json()["issue"])
