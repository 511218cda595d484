"""`Patient/[id]/$everything`: the compartment plus referenced resources, `start`/`end`, `_type`, `_since`,
paging, POST."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from fhir_server.operations.patient_everything import CARE_DATES, care_date, compartment_types
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


def encounter(ref: dict, start: str, end: str) -> dict:
    return {"resourceType": "Encounter", "status": "finished", "subject": ref, "period": {"start": start, "end": end},
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}


def observation(ref: dict, effective: str | None = None) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}, "subject": ref,
            **({"effectiveDateTime": effective} if effective else {})}


@pytest.fixture
def dated(client: httpx.Client) -> dict:
    """A patient whose record spans 2010-2021: each resource named by when its care took place."""
    subject = post(client, patient())
    ref = {"reference": f"Patient/{subject['id']}"}
    insurer = post(client, {"resourceType": "Organization", "name": "Insurer"})
    medication = post(client, {"resourceType": "Medication", "code": {"text": "amoxicillin"}})
    old_prescriber = post(client, {"resourceType": "Practitioner", "name": [{"family": "Retired"}]})
    return {
        "patient": subject,
        "encounter-2018": post(client, encounter(ref, "2018-05-02T09:00:00Z", "2018-05-02T09:30:00Z")),
        # Starts before 2020 and ends on its first day: care given in 2020 all the same.
        "encounter-new-year": post(client, encounter(ref, "2019-12-31T22:00:00Z", "2020-01-01T02:00:00Z")),
        "encounter-2020": post(client, encounter(ref, "2020-03-01T10:00:00Z", "2020-03-01T11:00:00Z")),
        "observation-2020": post(client, observation(ref, "2020-07-15")),
        "observation-2021": post(client, observation(ref, "2021-06-01T08:00:00+02:00")),
        "observation-undated": post(client, observation(ref)),
        "request-2019": post(client, {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                                      "medicationCodeableConcept": {"text": "ibuprofen"}, "subject": ref,
                                      "authoredOn": "2019-05-01",
                                      "requester": {"reference": f"Practitioner/{old_prescriber['id']}"}}),
        "request-2020": post(client, {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                                      "medicationReference": {"reference": f"Medication/{medication['id']}"},
                                      "subject": ref, "authoredOn": "2020-02-02T12:00:00Z"}),
        "condition-2015": post(client, {"resourceType": "Condition", "subject": ref, "onsetDateTime": "2015",
                                        "code": {"text": "fracture"}}),
        "condition-ongoing": post(client, {"resourceType": "Condition", "subject": ref, "code": {"text": "asthma"},
                                           "onsetPeriod": {"start": "2010-04"}}),
        "immunization-2020": post(client, {"resourceType": "Immunization", "status": "completed", "patient": ref,
                                           "vaccineCode": {"text": "influenza"}, "occurrenceDateTime": "2020-10"}),
        # Coverage has no care date: a period leaves it in.
        "coverage": post(client, {"resourceType": "Coverage", "status": "active", "beneficiary": ref,
                                  "payor": [{"reference": f"Organization/{insurer['id']}"}]}),
        "insurer": insurer, "medication": medication, "old-prescriber": old_prescriber,
    }


def named(record: dict, *names: str) -> set[tuple[str, str]]:
    return keys(record[name] for name in names)


ALWAYS = ("patient", "observation-undated", "coverage")


def test_start_and_end_keep_the_care_given_in_that_period(client: httpx.Client, dated: dict) -> None:
    bundle = everything(client, dated["patient"]["id"], start="2020-01-01", end="2020-12-31")
    in_2020 = named(dated, *ALWAYS, "encounter-new-year", "encounter-2020", "observation-2020", "request-2020",
                    "condition-ongoing", "immunization-2020")
    assert by_mode(bundle, "match") == in_2020
    assert bundle["total"] == len(in_2020)
    assert bundle["entry"][0]["resource"]["id"] == dated["patient"]["id"]
    # What the kept matches reference, not what the left-out 2019 prescription does.
    assert by_mode(bundle, "include") == named(dated, "insurer", "medication")
    assert by_mode(everything(client, dated["patient"]["id"], start="2020", end="2020"), "match") == in_2020


def test_start_alone_and_end_alone_leave_the_other_side_open(client: httpx.Client, dated: dict) -> None:
    patient_id = dated["patient"]["id"]
    assert by_mode(everything(client, patient_id, start="2021-01"), "match") == named(
        dated, *ALWAYS, "observation-2021", "condition-ongoing")
    assert by_mode(everything(client, patient_id, end="2017"), "match") == named(
        dated, *ALWAYS, "condition-2015", "condition-ongoing")
    # A date ends with its last instant: 2021-06-01T08:00+02:00 is 06:00Z, inside end=2021-06-01.
    assert named(dated, "observation-2021") <= by_mode(everything(client, patient_id, end="2021-06-01"), "match")
    assert named(dated, "observation-2021").isdisjoint(
        by_mode(everything(client, patient_id, end="2021-05-31"), "match"))


def test_start_and_end_combine_with_type_since_and_paging(client: httpx.Client, dated: dict) -> None:
    patient_id = dated["patient"]["id"]
    bundle = everything(client, patient_id, start="2020-01-01", end="2020-12-31", _type="Encounter,Patient")
    assert by_mode(bundle, "match") == named(dated, "patient", "encounter-new-year", "encounter-2020")
    time.sleep(0.05)
    since = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.05)
    for name in ("observation-2020", "observation-2021"):
        changed = {**dated[name], "status": "amended"}
        assert client.put(f"/Observation/{changed['id']}", json=changed, headers=fhir_headers()).status_code == 200
    bundle = everything(client, patient_id, start="2020", end="2020", _since=since)
    assert by_mode(bundle, "match") == named(dated, "observation-2020")
    seen: list[tuple[str, str]] = []
    bundle = everything(client, patient_id, start="2020-01-01", end="2020-12-31", _count="3")
    while True:
        seen += [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
                 if e["search"]["mode"] == "match"]
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        bundle = client.get(following[0]).json()
    assert len(seen) == len(set(seen)) == bundle["total"] == 9


def test_start_and_end_in_a_post(client: httpx.Client, dated: dict) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "start", "valueDate": "2021-01-01"},
                                                        {"name": "_type", "valueCode": "Observation"}]}
    response = client.post(f"/Patient/{dated['patient']['id']}/$everything", json=body, headers=fhir_headers())
    assert response.status_code == 200, response.text
    assert by_mode(response.json(), "match") == named(dated, "observation-2021", "observation-undated")


@pytest.mark.parametrize("params", [
    {"start": "2020-13"}, {"start": "2020-02-30"}, {"end": "2020-01-01T10:00:00Z"}, {"end": "yesterday"},
    {"start": "2021", "end": "2020-12-31"},
])
def test_start_and_end_must_be_dates_in_order(client: httpx.Client, record: dict, params: dict) -> None:
    response = client.get(f"/Patient/{record['patient']['id']}/$everything", params=params)
    assert response.status_code == 400, response.text


def test_parameters_of_at_most_one_value_are_refused_twice(client: httpx.Client, record: dict) -> None:
    url = f"/Patient/{record['patient']['id']}/$everything"
    assert client.get(url, params=[("start", "2020"), ("start", "2021")]).status_code == 400
    assert client.get(url, params=[("_count", "2"), ("_count", "3")]).status_code == 400
    assert client.get(url, params=[("_type", "Patient"), ("_type", "Encounter")]).status_code == 200


def test_care_dates_are_date_search_parameters_of_compartment_types() -> None:
    members = set(compartment_types())
    for resource_type in CARE_DATES:
        assert resource_type in members, resource_type
        param = care_date(resource_type)
        assert param is not None and param.code == CARE_DATES[resource_type] and param.type == "date"
    assert care_date("Observation").url == "http://hl7.org/fhir/SearchParameter/clinical-date"
    assert care_date("MedicationRequest").code == "authoredon"
    assert care_date("Patient") is None and care_date("Coverage") is None
