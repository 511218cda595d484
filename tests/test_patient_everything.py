"""`Patient/[id]/$everything`: the compartment plus referenced resources, `_type`, `_since`, paging, POST."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.fhir_data import fhir_headers, patient


def post(http: httpx.Client, resource: dict) -> dict:
    response = http.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def record(client: httpx.Client) -> dict:
    """A patient with an encounter, observations, a prescription and the staff and things they reference."""
    organization = post(client, {"resourceType": "Organization", "name": "Clinic"})
    doctor = post(client, {"resourceType": "Practitioner", "name": [{"family": "Silva"}]})
    medication = post(client, {"resourceType": "Medication", "code": {"text": "lisinopril 20 mg"}})
    unrelated = post(client, {"resourceType": "Practitioner", "name": [{"family": "Nobody"}]})
    subject = post(client, patient(managingOrganization={"reference": f"Organization/{organization['id']}"}))
    other = post(client, patient())
    ref = {"reference": f"Patient/{subject['id']}"}
    by_doctor = {"reference": f"Practitioner/{doctor['id']}"}
    encounter = post(client, {"resourceType": "Encounter", "status": "finished",
                              "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                              "subject": ref, "participant": [{"individual": by_doctor}]})
    observations = [post(client, {"resourceType": "Observation", "status": "final", "code": {"text": f"vital {n}"},
                                  "subject": ref, "encounter": {"reference": f"Encounter/{encounter['id']}"}})
                    for n in range(3)]
    request = post(client, {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                            "medicationReference": {"reference": f"Medication/{medication['id']}"}, "subject": ref,
                            "requester": by_doctor})
    foreign = post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "not theirs"},
                            "subject": {"reference": f"Patient/{other['id']}"}})
    return {"patient": subject, "other": other, "organization": organization, "doctor": doctor,
            "medication": medication, "unrelated": unrelated, "encounter": encounter, "observations": observations,
            "request": request, "foreign": foreign}


def keys(resources) -> set[tuple[str, str]]:
    return {(r["resourceType"], r["id"]) for r in resources}


def everything(http: httpx.Client, patient_id: str, **params: str) -> dict:
    response = http.get(f"/Patient/{patient_id}/$everything", params=params)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


def by_mode(bundle: dict, mode: str) -> set[tuple[str, str]]:
    return keys(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == mode)


def test_the_compartment_and_what_it_references(client: httpx.Client, record: dict) -> None:
    bundle = everything(client, record["patient"]["id"])
    assert bundle["entry"][0]["resource"]["id"] == record["patient"]["id"]
    assert by_mode(bundle, "match") == keys([record["patient"], record["encounter"], *record["observations"],
                                             record["request"]])
    assert by_mode(bundle, "include") == keys([record["organization"], record["doctor"], record["medication"]])
    assert bundle["total"] == 6
    assert all(e["fullUrl"].endswith(f"{e['resource']['resourceType']}/{e['resource']['id']}")
               for e in bundle["entry"])
    assert not [link for link in bundle["link"] if link["relation"] == "next"]


def test_type_limits_matches_and_includes(client: httpx.Client, record: dict) -> None:
    bundle = everything(client, record["patient"]["id"], _type="Observation,Practitioner")
    assert by_mode(bundle, "match") == keys(record["observations"])
    assert by_mode(bundle, "include") == set()  # observations reference no practitioner
    bundle = everything(client, record["patient"]["id"], _type="MedicationRequest,Practitioner,Medication")
    assert by_mode(bundle, "match") == keys([record["request"]])
    assert by_mode(bundle, "include") == keys([record["doctor"], record["medication"]])


def test_since_keeps_what_changed(client: httpx.Client, record: dict) -> None:
    time.sleep(0.05)
    since = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.05)
    changed = {**record["observations"][1], "status": "amended"}
    assert client.put(f"/Observation/{changed['id']}", json=changed, headers=fhir_headers()).status_code == 200
    bundle = everything(client, record["patient"]["id"], _since=since)
    assert by_mode(bundle, "match") == keys([changed])
    assert bundle["total"] == 1


def test_paging_walks_every_match_once(client: httpx.Client, record: dict) -> None:
    seen: list[tuple[str, str]] = []
    bundle = everything(client, record["patient"]["id"], _count="2")
    pages = 0
    while True:
        pages += 1
        matches = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
                   if e["search"]["mode"] == "match"]
        assert len(matches) <= 2 and bundle["total"] == 6
        seen += matches
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        response = client.get(following[0])
        assert response.status_code == 200, response.text
        bundle = response.json()
    assert pages == 3
    assert len(seen) == len(set(seen)) == 6
    assert set(seen) == keys([record["patient"], record["encounter"], *record["observations"], record["request"]])


def test_post_with_parameters(client: httpx.Client, record: dict) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Encounter"}]}
    response = client.post(f"/Patient/{record['patient']['id']}/$everything", json=body, headers=fhir_headers())
    assert response.status_code == 200, response.text
    assert by_mode(response.json(), "match") == keys([record["encounter"]])
    assert by_mode(response.json(), "include") == set()


def test_refusals(client: httpx.Client, record: dict) -> None:
    patient_id = record["patient"]["id"]
    assert client.get("/Patient/unknown-patient/$everything").status_code == 404
    assert client.get(f"/Patient/{patient_id}/$everything", params={"_type": "Nonsense"}).status_code == 400
    assert client.get(f"/Patient/{patient_id}/$everything", params={"_count": "x"}).status_code == 400
    assert client.get(f"/Patient/{patient_id}/$everything", params={"_since": "yesterday"}).status_code == 400
    assert client.get(f"/Patient/{patient_id}/$everything", params={"colour": "red"}).status_code == 400
    assert client.get(f"/Patient/{patient_id}/$everything", params={"_cursor": "garbage"}).status_code == 400
    assert client.get(f"/Observation/{patient_id}/$everything").status_code == 404
