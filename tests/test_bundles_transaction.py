"""Transaction Bundles: order, reference resolution, conditional forms, duplicates and rollback."""

from __future__ import annotations

import json

import httpx
import pytest
from pymongo import MongoClient

from tests.bundle_data import bundle, entry, observation, status_code, urn
from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient, unique


def post(client: httpx.Client, body: dict, **headers: str) -> httpx.Response:
    return client.post("/", json=body, headers=fhir_headers(**headers))


def create(client: httpx.Client, resource: dict) -> dict:
    response = client.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
    assert response.status_code == 201, response.text
    return response.json()


def snapshot(mongo: MongoClient, server: LiveServer) -> dict[str, list]:
    """Every document of every resource collection and the history, for before/after comparison."""
    database = mongo[server.settings.database_name]
    names = [n for n in database.list_collection_names() if n[0].isupper() or n == "history"]
    names = [n for n in names if n != "AuditEvent"]
    return {n: sorted(database[n].find(), key=lambda d: str(d["_id"])) for n in sorted(names)}


def test_transaction_creates_and_resolves_urn_references_everywhere(client: httpx.Client) -> None:
    patient_urn, practitioner_urn = urn(), urn()
    obs = observation(patient_urn,
                      performer=[{"reference": practitioner_urn}],
                      extension=[{"url": "http://example.org/ext", "valueReference": {"reference": patient_urn}}],
                      contained=[{"resourceType": "Provenance", "id": "p1", "recorded": "2024-01-01T00:00:00Z",
                                  "target": [{"reference": patient_urn}],
                                  "agent": [{"who": {"reference": practitioner_urn}}]}],
                      component=[{"code": {"text": "c"}, "valueString": "x",
                                  "extension": [{"url": "http://example.org/by",
                                                 "valueReference": {"reference": practitioner_urn}}]}])
    body = bundle("transaction",
                  entry("POST", "Observation", obs, urn()),
                  entry("POST", "Patient", patient(), patient_urn),
                  entry("POST", "Practitioner", {"resourceType": "Practitioner", "name": [{"family": "Who"}]},
                        practitioner_urn))
    response = post(client, body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["resourceType"] == "Bundle" and result["type"] == "transaction-response"
    assert [status_code(e) for e in result["entry"]] == [201, 201, 201]
    for item in result["entry"]:
        answer = item["response"]
        assert answer["status"] == "201 Created"
        assert answer["location"].endswith("/_history/1") and answer["etag"] == 'W/"1"' and answer["lastModified"]
    patient_ref = "Patient/" + result["entry"][1]["resource"]["id"]
    practitioner_ref = "Practitioner/" + result["entry"][2]["resource"]["id"]
    stored = client.get(result["entry"][0]["response"]["location"].split("/_history")[0]).json()
    assert stored["subject"]["reference"] == patient_ref
    assert stored["performer"][0]["reference"] == practitioner_ref
    assert stored["extension"][0]["valueReference"]["reference"] == patient_ref
    assert stored["contained"][0]["target"][0]["reference"] == patient_ref
    assert stored["contained"][0]["agent"][0]["who"]["reference"] == practitioner_ref
    assert stored["component"][0]["extension"][0]["valueReference"]["reference"] == practitioner_ref


def test_absolute_full_urls_resolve_relative_references(client: httpx.Client) -> None:
    base = "http://other.example.org/fhir"
    body = bundle("transaction",
                  entry("POST", "Patient", patient(), f"{base}/Patient/abc"),
                  entry("POST", "Observation", observation("Patient/abc"), f"{base}/Observation/o1"))
    result = post(client, body).json()
    patient_id = result["entry"][0]["resource"]["id"]
    assert patient_id != "abc"
    assert result["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"


def test_unresolvable_urn_reference_fails_the_transaction(client: httpx.Client) -> None:
    body = bundle("transaction", entry("POST", "Observation", observation(urn()), urn()))
    response = post(client, body)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert "Bundle.entry[0]" in issue["expression"] and "names no entry" in issue["diagnostics"]


def test_processing_order_and_response_order(client: httpx.Client) -> None:
    doomed = create(client, patient())
    kept = create(client, patient())
    mrn = unique("mrn")
    body = bundle("transaction",
                  entry("GET", f"Patient/{kept['id']}"),
                  entry("PUT", f"Patient/{kept['id']}", {**kept, "gender": "male"}),
                  entry("POST", "Patient", patient(identifier=[{"system": "urn:test:mrn", "value": mrn}]), urn(),
                        ifNoneExist=f"identifier=urn:test:mrn|{mrn}"),
                  entry("PUT", f"Patient?identifier=urn:test:mrn|{mrn}", patient()),
                  entry("DELETE", f"Patient/{doomed['id']}"))
    response = post(client, body)
    assert response.status_code == 400, response.text
    # The conditional PUT runs after the POST and finds the patient it created: one resource, two changes.
    assert "Bundle.entry[3]" in response.json()["issue"][0]["expression"]
    del body["entry"][3]
    response = post(client, body)
    assert response.status_code == 200, response.text
    result = response.json()["entry"]
    assert [status_code(e) for e in result] == [200, 200, 201, 204]
    # GET runs last: it sees the version the PUT wrote.
    assert result[0]["resource"]["gender"] == "male" and result[0]["response"]["etag"] == 'W/"2"'
    assert result[1]["resource"]["gender"] == "male" and result[1]["response"]["etag"] == 'W/"2"'
    assert client.get(f"/Patient/{doomed['id']}").status_code == 410


def test_rollback_leaves_the_store_exactly_as_before(client: httpx.Client, server: LiveServer,
                                                      mongo: MongoClient) -> None:
    existing = create(client, patient())
    patient_urn = urn()
    body = bundle("transaction",
                  entry("POST", "Patient", patient(), patient_urn),
                  entry("POST", "Observation", observation(patient_urn), urn()),
                  entry("PUT", f"Patient/{existing['id']}", {**existing, "active": False}),
                  entry("DELETE", f"Patient/{create(client, patient())['id']}"),
                  entry("PATCH", f"Patient/{existing['id']}x",
                        {"resourceType": "Parameters", "parameter": []}),
                  entry("POST", "Observation", {"resourceType": "Observation", "status": "not-a-status"}))
    before = snapshot(mongo, server)
    response = post(client, body)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[5]" in outcome["issue"][0]["expression"]
    assert outcome["issue"][0]["diagnostics"].startswith("Bundle.entry[5] (POST Observation)")
    assert snapshot(mongo, server) == before


def test_a_failing_read_rolls_back_too(client: httpx.Client, server: LiveServer, mongo: MongoClient) -> None:
    before = snapshot(mongo, server)
    body = bundle("transaction", entry("POST", "Patient", patient()), entry("GET", f"Patient/{unique('none')}"))
    response = post(client, body)
    assert response.status_code == 404
    assert "Bundle.entry[1]" in response.json()["issue"][0]["expression"]
    assert snapshot(mongo, server) == before


def test_conditional_references(client: httpx.Client) -> None:
    mrn = unique("mrn")
    target = create(client, patient(identifier=[{"system": "urn:test:mrn", "value": mrn}]))
    body = bundle("transaction", entry("POST", "Observation", observation(f"Patient?identifier=urn:test:mrn|{mrn}")))
    result = post(client, body).json()
    assert result["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{target['id']}"


@pytest.mark.parametrize("matches", [0, 2])
def test_conditional_reference_must_match_exactly_one(client: httpx.Client, matches: int) -> None:
    mrn = unique("mrn")
    for _ in range(matches):
        create(client, patient(identifier=[{"system": "urn:test:mrn", "value": mrn}]))
    body = bundle("transaction",
                  entry("POST", "Patient", patient(), urn()),
                  entry("POST", "Observation", observation(f"Patient?identifier=urn:test:mrn|{mrn}")))
    response = post(client, body)
    assert response.status_code == 412
    assert "Bundle.entry[1]" in response.json()["issue"][0]["expression"]


def test_if_none_exist_matches_and_references_follow_it(client: httpx.Client) -> None:
    mrn = unique("mrn")
    existing = create(client, patient(identifier=[{"system": "urn:test:mrn", "value": mrn}]))
    patient_urn, new_urn = urn(), urn()
    body = bundle("transaction",
                  entry("POST", "Patient", patient(), patient_urn, ifNoneExist=f"identifier=urn:test:mrn|{mrn}"),
                  entry("POST", "Patient", patient(), new_urn, ifNoneExist=f"identifier=urn:test:mrn|{unique()}"),
                  entry("POST", "Observation", observation(patient_urn), urn()),
                  entry("POST", "Observation", observation(new_urn), urn()))
    result = post(client, body).json()["entry"]
    assert [status_code(e) for e in result] == [200, 201, 201, 201]
    assert result[0]["resource"]["id"] == existing["id"]
    assert result[2]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    assert result[3]["resource"]["subject"]["reference"] == f"Patient/{result[1]['resource']['id']}"


def test_conditional_update_target_is_known_to_references(client: httpx.Client) -> None:
    mrn = unique("mrn")
    patient_urn = urn()
    body = bundle("transaction",
                  entry("PUT", f"Patient?identifier=urn:test:mrn|{mrn}",
                        patient(identifier=[{"system": "urn:test:mrn", "value": mrn}]), patient_urn),
                  entry("POST", "Observation", observation(patient_urn), urn()))
    result = post(client, body).json()["entry"]
    assert status_code(result[0]) == 201
    assert result[1]["resource"]["subject"]["reference"] == f"Patient/{result[0]['resource']['id']}"


def test_duplicate_targets_fail(client: httpx.Client) -> None:
    mrn = unique("mrn")
    existing = create(client, patient(identifier=[{"system": "urn:test:mrn", "value": mrn}]))
    same_url = bundle("transaction",
                      entry("PUT", f"Patient/{existing['id']}", existing),
                      entry("DELETE", f"Patient/{existing['id']}"))
    assert post(client, same_url).status_code == 400
    resolved = bundle("transaction",
                      entry("PUT", f"Patient/{existing['id']}", existing),
                      entry("PUT", f"Patient?identifier=urn:test:mrn|{mrn}", existing))
    response = post(client, resolved)
    assert response.status_code == 400
    assert "more than one entry" in response.json()["issue"][0]["diagnostics"]
    full_url = urn()
    twice = bundle("transaction", entry("POST", "Patient", patient(), full_url),
                   entry("POST", "Patient", patient(), full_url))
    assert post(client, twice).status_code == 400
    assert client.get(f"/Patient/{existing['id']}").json()["meta"]["versionId"] == "1"


def test_patch_entries_fhirpath_and_binary_json_patch(client: httpx.Client) -> None:
    first, second = create(client, patient()), create(client, patient())
    fhirpath = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.gender"},
        {"name": "value", "valueCode": "male"}]}]}
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json",
              "data": "W3sib3AiOiAicmVwbGFjZSIsICJwYXRoIjogIi9hY3RpdmUiLCAidmFsdWUiOiBmYWxzZX1d"}
    body = bundle("transaction", entry("PATCH", f"Patient/{first['id']}", fhirpath),
                  entry("PATCH", f"Patient/{second['id']}", binary))
    result = post(client, body).json()["entry"]
    assert [status_code(e) for e in result] == [200, 200]
    assert client.get(f"/Patient/{first['id']}").json()["gender"] == "male"
    assert client.get(f"/Patient/{second['id']}").json()["active"] is False


def test_prefer_minimal_leaves_resources_out(client: httpx.Client) -> None:
    body = bundle("transaction", entry("POST", "Patient", patient(), urn()))
    result = post(client, body, Prefer="return=minimal").json()["entry"][0]
    assert "resource" not in result and result["response"]["status"] == "201 Created"


def test_entry_limit_gives_413(make_server, mongo: MongoClient) -> None:
    small = make_server(max_bundle_entries=2)
    with httpx.Client(base_url=small.url, auth=small.auth) as http:
        body = bundle("transaction", *[entry("POST", "Patient", patient()) for _ in range(3)])
        response = post(http, body)
        assert response.status_code == 413
        assert response.json()["issue"][0]["code"] == "too-costly"
        assert mongo[small.settings.database_name]["Patient"].count_documents({}) == 0
        assert post(http, bundle("batch", *[entry("GET", "metadata")] * 3)).status_code == 413


def test_bad_bundles_get_400(client: httpx.Client) -> None:
    assert post(client, bundle("collection")).status_code == 400
    assert post(client, patient()).status_code == 400
    assert post(client, {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient()}]}
                ).status_code == 400
    assert post(client, bundle("transaction", entry("FETCH", "Patient"))).status_code == 400
    assert post(client, bundle("transaction", entry("POST", "", bundle("batch")))).status_code == 400
    assert post(client, bundle("transaction", entry("POST", "http://elsewhere.org/fhir/Patient", patient()))
                ).status_code == 400


def test_other_bundle_types_are_stored_as_resources(client: httpx.Client) -> None:
    document = bundle("collection", {"fullUrl": urn(), "resource": patient()})
    response = client.post("/Bundle", json=document, headers=fhir_headers())
    assert response.status_code == 201, response.text
    stored = client.get(response.headers["Location"].split("/_history")[0]).json()
    assert stored["type"] == "collection" and stored["entry"][0]["resource"]["resourceType"] == "Patient"


def test_decimal_precision_survives_reference_rewriting(client: httpx.Client) -> None:
    patient_urn = urn()
    body = json.dumps(bundle("transaction", entry("POST", "Patient", patient(), patient_urn),
                             entry("POST", "Observation", observation(patient_urn), urn())))
    body = body.replace('"value": 72', '"value": 72.50')
    response = client.post("/", content=body, headers=fhir_headers())
    assert response.status_code == 200, response.text
    location = response.json()["entry"][1]["response"]["location"]
    assert '"value":72.50' in client.get(location).text.replace(" ", "")


def test_urn_oid_full_urls_are_resolved(client: httpx.Client) -> None:
    oid = "urn:oid:1.2.840.113619.2.62.994044785528.114289542805"
    body = bundle("transaction", entry("POST", "Patient", patient(), oid),
                  entry("POST", "Observation", observation(oid), urn()))
    result = post(client, body).json()["entry"]
    assert result[1]["resource"]["subject"]["reference"] == f"Patient/{result[0]['resource']['id']}"


def test_capability_statement_lists_batch_and_transaction(client: httpx.Client) -> None:
    codes = {i["code"] for i in client.get("/metadata").json()["rest"][0]["interaction"]}
    assert {"batch", "transaction"} <= codes


def test_put_entries_keep_history_and_if_match(client: httpx.Client) -> None:
    existing = create(client, patient(gender="female"))
    new_id = unique("put")
    body = bundle("transaction",
                  entry("PUT", f"Patient/{existing['id']}", {**existing, "gender": "male"}, ifMatch='W/"1"'),
                  entry("PUT", f"Patient/{new_id}", patient(id=new_id)))
    result = post(client, body).json()["entry"]
    assert [status_code(e) for e in result] == [200, 201]
    assert client.get(f"/Patient/{existing['id']}").json()["gender"] == "male"
    assert client.get(f"/Patient/{existing['id']}/_history/1").json()["gender"] == "female"
    assert len(client.get(f"/Patient/{existing['id']}/_history").json()["entry"]) == 2
    assert client.get(f"/Patient/{new_id}").json()["meta"]["versionId"] == "1"
    stale = bundle("transaction", entry("PUT", f"Patient/{existing['id']}", existing, ifMatch='W/"1"'))
    assert post(client, stale).status_code == 412
