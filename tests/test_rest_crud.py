"""create, read, vread, update, delete over HTTP: statuses, headers and bodies per http.html."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from email.utils import format_datetime, parsedate_to_datetime

import httpx

from tests.fhir_data import fhir_headers, patient


def create(client: httpx.Client, resource: dict) -> httpx.Response:
    response = client.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
    assert response.status_code == 201, response.text
    return response


def test_create_assigns_id_version_and_headers(client: httpx.Client, server) -> None:
    sent = patient(id="client-chosen")
    response = create(client, sent)
    body = response.json()
    assert body["id"] != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"{server.url}/Patient/{body['id']}/_history/1"
    assert parsedate_to_datetime(response.headers["Last-Modified"])
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    assert body["name"] == sent["name"]


def test_read_returns_current_version(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    response = client.get(f"/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["ETag"] == 'W/"1"'


def test_read_unknown_is_404_with_outcome(client: httpx.Client) -> None:
    response = client.get("/Patient/does-not-exist")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "not-found"


def test_conditional_read_if_none_match_and_if_modified_since(client: httpx.Client) -> None:
    created = create(client, patient())
    url = f"/Patient/{created.json()['id']}"
    assert client.get(url, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": 'W/"7"'}).status_code == 200
    modified = parsedate_to_datetime(created.headers["Last-Modified"])
    assert client.get(url, headers={"If-Modified-Since": created.headers["Last-Modified"]}).status_code == 304
    earlier = format_datetime(modified - timedelta(hours=1), usegmt=True)
    assert client.get(url, headers={"If-Modified-Since": earlier}).status_code == 200


def test_update_creates_new_versions_and_vread_keeps_old(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    changed = {**created, "gender": "male"}
    response = client.put(f"/Patient/{created['id']}", json=changed, headers=fhir_headers())
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.headers["ETag"] == 'W/"2"'
    first = client.get(f"/Patient/{created['id']}/_history/1")
    assert first.status_code == 200 and first.json()["gender"] == "female"
    assert client.get(f"/Patient/{created['id']}/_history/2").json()["gender"] == "male"
    assert client.get(f"/Patient/{created['id']}/_history/3").status_code == 404


def test_update_as_create_is_201_with_client_id(client: httpx.Client, server) -> None:
    resource = patient(id=f"chosen-{id(client)}-x")
    response = client.put(f"/Patient/{resource['id']}", json=resource, headers=fhir_headers())
    assert response.status_code == 201
    assert response.headers["Location"] == f"{server.url}/Patient/{resource['id']}/_history/1"
    assert client.get(f"/Patient/{resource['id']}").status_code == 200


def test_update_id_must_match_url(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    for body in ({**created, "id": "other"}, {k: v for k, v in created.items() if k != "id"}):
        response = client.put(f"/Patient/{created['id']}", json=body, headers=fhir_headers())
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"


def test_update_if_match_mismatch_is_412(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    url = f"/Patient/{created['id']}"
    assert client.put(url, json=created, headers=fhir_headers(**{"If-Match": 'W/"2"'})).status_code == 412
    assert client.put(url, json=created, headers=fhir_headers(**{"If-Match": 'W/"1"'})).status_code == 200
    assert client.put(url, json=created, headers=fhir_headers(**{"If-Match": "garbage"})).status_code == 400


def test_delete_then_read_is_410_and_repeat_delete_is_fine(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    url = f"/Patient/{created['id']}"
    first = client.delete(url)
    assert first.status_code == 204
    assert first.headers["ETag"] == 'W/"2"'
    assert client.get(url).status_code == 410
    assert client.delete(url).status_code == 204
    assert client.delete("/Patient/never-existed").status_code == 204
    assert client.get(f"{url}/_history/1").status_code == 200
    assert client.get(f"{url}/_history/2").status_code == 410


def test_update_after_delete_revives_with_next_version(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    url = f"/Patient/{created['id']}"
    client.delete(url)
    response = client.put(url, json=created, headers=fhir_headers())
    assert response.status_code == 201
    assert response.json()["meta"]["versionId"] == "3"


def test_prefer_return(client: httpx.Client) -> None:
    minimal = client.post("/Patient", json=patient(), headers=fhir_headers(Prefer="return=minimal"))
    assert minimal.status_code == 201 and minimal.content == b"" and minimal.headers["Location"]
    outcome = client.post("/Patient", json=patient(), headers=fhir_headers(Prefer="return=OperationOutcome"))
    assert outcome.status_code == 201 and outcome.json()["resourceType"] == "OperationOutcome"
    full = client.post("/Patient", json=patient(), headers=fhir_headers(Prefer="return=representation"))
    assert full.json()["resourceType"] == "Patient"
    deleted = client.delete(f"/Patient/{full.json()['id']}", headers={"Prefer": "return=OperationOutcome"})
    assert deleted.status_code == 200 and deleted.json()["resourceType"] == "OperationOutcome"


def test_head_read_has_headers_and_no_body(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    response = client.head(f"/Patient/{created['id']}")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["ETag"] == 'W/"1"'


def test_every_r4_type_goes_through_the_generic_path(client: httpx.Client) -> None:
    for resource in ({"resourceType": "Basic", "code": {"text": "x"}},
                     {"resourceType": "Substance", "code": {"text": "water"}},
                     {"resourceType": "Linkage", "item": [{"type": "source", "resource": {"reference": "Patient/1"}}]}):
        created = create(client, resource).json()
        assert client.get(f"/{resource['resourceType']}/{created['id']}").json() == created


def test_decimal_precision_survives_create_read_and_history(client: httpx.Client) -> None:
    values = ("72.50", "0.000012300", "12345678901234567890.1234", "1.5", "1E+3")
    components = ",".join(f'{{"code":{{"text":"c{i}"}},"valueQuantity":{{"value":{v}}}}}' for i, v in enumerate(values))
    body = f'{{"resourceType":"Observation","status":"final","code":{{"text":"w"}},"component":[{components}]}}'
    created = client.post("/Observation", content=body, headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 201, created.text
    location = f"/Observation/{created.json()['id']}"
    for response in (created, client.get(location), client.get(f"{location}/_history/1"),
                     client.get(f"{location}/_history")):
        returned = [c["valueQuantity"]["value"] for c in _decimal_components(response.content)]
        assert [str(v) for v in returned] == [str(Decimal(v)) for v in values]


def _decimal_components(content: bytes) -> list[dict]:
    body = json.loads(content, parse_float=Decimal)
    resource = body["entry"][0]["resource"] if body["resourceType"] == "Bundle" else body
    return resource["component"]


def test_decimals_beyond_34_digits_are_refused_not_truncated(client: httpx.Client) -> None:
    body = ('{"resourceType":"Observation","status":"final","code":{"text":"x"},'
            '"valueQuantity":{"value":1.' + "1" * 40 + "}}")
    response = client.post("/Observation", content=body, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code in (400, 422)
    assert "significant digits" in response.text
