"""Table-driven search over HTTP on the official R4 examples: every parameter type, modifier
and prefix, each case with the example ids a reader of the examples expects.

The examples are stored under their own ids (update-as-create) on a server with a database of
their own, so no other test's data can appear in the results.
"""

from __future__ import annotations

import httpx
import pytest

from tests.fhir_data import fhir_headers

TYPES = ("Patient", "Observation", "Organization", "RiskAssessment")
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
BP = {"blood-pressure", "blood-pressure-dar", "blood-pressure-cancel"}
FEMALE = {"animal", "genetics-example1", "infant-mom", "infant-twin-1", "mom", "pat4", "proband"}
F001_OBS = {"ekg", "f001", "f002", "f003", "f004", "f005", "unsat"}
ORG_1 = {"example", "ch-example", "dicom", "pat1", "pat2", "pat3", "pat4"}

CASES = [
    # string: starts-with, case and accent folded; :exact; :contains
    ("Patient", "family=chalmers", {"example"}),
    ("Patient", "family=Chalm", {"example"}),
    ("Patient", "family:exact=chalmers", set()),
    ("Patient", "family:exact=Chalmers", {"example"}),
    ("Patient", "family:contains=ALMER", {"example"}),
    ("Patient", "name=levin", {"glossy", "xcda"}),
    ("Patient", "family=levin,bor", {"glossy", "xcda", "f201"}),
    ("Patient", "name=peter&name=chalmers", {"example"}),
    ("Organization", "name=burgers", {"f001", "f002", "f003"}),
    ("Organization", "name:contains=medisch", {"f203"}),
    # token: code, system|code, |code, system|, :not, :missing, :text, :of-type
    ("Patient", "gender=female", FEMALE),
    ("Patient", "gender:not=male", FEMALE | {"pat2", "ihe-pcd"}),
    ("Patient", "gender:missing=true", {"ihe-pcd"}),
    ("Patient", "identifier=urn:oid:1.2.36.146.595.217.0.1|12345", {"example"}),
    ("Patient", "identifier=12345", {"example", "xcda"}),
    ("Patient", "identifier=http://hl7.org/fhir/sid/us-ssn|", {"genetics-example1", "mom"}),
    ("Patient", "identifier=|AB60001", {"ihe-pcd"}),
    ("Patient", "_id=example,pat1", {"example", "pat1"}),
    ("Patient", "deceased=true", {"pat3", "pat4"}),
    ("Observation", f"code={LOINC}|85354-9", BP),
    ("Observation", "code=85354-9&status=final", BP - {"blood-pressure-cancel"}),
    ("Observation", f"code={LOINC}|85354-9&status:not=final", {"blood-pressure-cancel"}),
    # :text is a string search (starts-with) on the texts and displays: "2 minute Apgar Score" has
    # no text or display starting with "apgar".
    ("Observation", "code:text=apgar", {"1minute-apgar-score", "5minute-apgar-score", "10minute-apgar-score",
                                        "20minute-apgar-score"}),
    ("Observation", "code:text=2 minute", {"2minute-apgar-score"}),
    # reference: id, Type/id, :Type, chains, _has
    ("Observation", "subject=Patient/f001", F001_OBS),
    ("Observation", "subject:Patient=f001", F001_OBS),
    ("Observation", "patient=f001", F001_OBS),
    ("Observation", "subject=Group/herd1", {"herd1"}),
    ("Patient", "organization=Organization/1", ORG_1),
    ("Patient", "organization=1", ORG_1),
    ("Patient", "organization.name=gastro", ORG_1),
    ("Observation", "subject:Patient.family=van de heuvel&code=15074-8", {"f001", "unsat"}),
    ("Patient", f"_has:Observation:patient:code={LOINC}|8867-4", {"example"}),
    ("Organization", "_has:Patient:organization:family=donald", {"1"}),
    # date: prefixes against ranges (a day is a range; a Period is a range)
    ("Patient", "birthdate=1974-12-25", {"example", "ch-example"}),
    ("Patient", "birthdate=1974-12", {"example", "ch-example"}),
    ("Patient", "birthdate=lt1940", {"glossy", "xcda"}),
    ("Patient", "birthdate=eb1933", {"glossy", "xcda"}),
    ("Patient", "birthdate=ge2017-05-15", {"infant-twin-1", "infant-twin-2", "newborn"}),
    ("Patient", "birthdate=gt2017-05-15", {"newborn"}),
    ("Patient", "birthdate=sa2017-05-15", {"newborn"}),
    ("Patient", "birthdate=le1944-11-17&birthdate=gt1935", {"f001"}),
    ("Observation", "date=2012-09-17", BP),
    ("Observation", "date=2013-04", {"f002", "f003", "f004", "f005", "unsat"}),
    ("Observation", "date=ge2018-04-01&subject=Patient/example", {"abdo-tender", "map-sitting"}),
    ("Observation", "date=ne2012-09-17&code=85354-9", set()),
    # quantity: prefixes, implicit precision, system|code, UCUM conversion
    ("Observation", "value-quantity=lt1", {"bmd", "herd1", "1minute-apgar-score"}),
    ("Observation", "value-quantity=185||[lb_av]", {"example"}),
    ("Observation", f"value-quantity=6.3|{UCUM}|mmol/L", {"f001"}),
    ("Observation", f"value-quantity=83.9|{UCUM}|kg", {"example"}),
    ("Observation", f"value-quantity=gt100|{UCUM}|/min", set()),
    ("Observation", f"value-quantity=44|{UCUM}|/min", {"heart-rate"}),
    # number
    ("RiskAssessment", "probability=0.02", {"cardiac"}),
    ("RiskAssessment", "probability=gt0.0015", {"cardiac", "genetic"}),
    ("RiskAssessment", "probability=lt0.0002", {"genetic"}),
    # composite
    ("Observation", f"component-code-value-quantity={LOINC}|8480-6$107", {"blood-pressure", "blood-pressure-dar"}),
    ("Observation", f"component-code-value-quantity={LOINC}|8462-4$gt50", {"blood-pressure"}),
    ("Observation", f"code-value-quantity={LOINC}|8867-4$44", {"heart-rate"}),
]


@pytest.fixture(scope="module")
def examples_client(make_server, official_examples) -> httpx.Client:
    server = make_server()
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60) as http:
        for resource in official_examples:
            if resource["resourceType"] in TYPES:
                response = http.put(f"/{resource['resourceType']}/{resource['id']}", json=resource,
                                    headers=fhir_headers())
                assert response.status_code in (200, 201), response.text
        yield http


@pytest.mark.parametrize(("resource_type", "query", "expected"), CASES,
                         ids=[f"{t}?{q}" for t, q, _ in CASES])
def test_search_official_examples(examples_client: httpx.Client, resource_type: str, query: str,
                                  expected: set[str]) -> None:
    response = examples_client.get(f"/{resource_type}?{query}&_count=1000",
                                   headers={"Prefer": "handling=strict"})
    assert response.status_code == 200, response.text
    found = {e["resource"]["id"] for e in response.json().get("entry", [])}
    assert found == expected
    assert response.json()["total"] == len(expected)


def test_approximate_date_is_near(examples_client: httpx.Client) -> None:
    found = {e["resource"]["id"] for e in examples_client.get("/Patient?birthdate=ap1974-12-25").json()["entry"]}
    assert {"example", "ch-example"} <= found
    assert not found & {"newborn", "glossy", "infant-twin-1"}
