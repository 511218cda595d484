"""`_contained` and `_containedType` (R4 search, "Contained Resources"): contained resources are found by their
own search parameters, returned as their containers or as themselves, paged and counted, kept in
step with their container's writes (update, patch, delete, transaction Bundles), and never found
through a container the caller may not read.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fhir_data import fhir_headers, patient, unique
from tests.smart import BackendAuth, register_backend_client
from tests.test_search_access import OnePatient, _perform
from tests.test_search_http import _link, _pages

Json = dict[str, Any]
SYSTEM = "urn:test:med"


def _medication(local_id: str, code: str) -> Json:
    return {"resourceType": "Medication", "id": local_id, "code": {"coding": [{"system": SYSTEM, "code": code}]}}


def _request(subject: str, *contained: Json) -> Json:
    """A MedicationRequest holding `contained` Medications, every one referenced (dom-3)."""
    resource: Json = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                      "subject": {"reference": subject}}
    if contained:
        resource["contained"] = list(contained)
        resource["medicationReference"] = {"reference": f"#{contained[0]['id']}"}
        if contained[1:]:
            resource["supportingInformation"] = [{"reference": f"#{c['id']}"} for c in contained[1:]]
    else:
        resource["medicationCodeableConcept"] = {"text": "none contained"}
    return resource


def _create(client: httpx.Client, resource: Json) -> Json:
    response = client.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
    assert response.status_code == 201, response.text
    return response.json()


def _search(client: httpx.Client, query: str) -> Json:
    response = client.get(f"/Medication?{query}")
    assert response.status_code == 200, response.text
    return response.json()


def _urls(bundle: Json) -> list[str]:
    return sorted(e["fullUrl"] for e in bundle.get("entry", ()) if e["search"]["mode"] == "match")


@pytest.fixture
def subject(client: httpx.Client) -> str:
    return f"Patient/{_create(client, patient())['id']}"


def test_true_false_both_and_contained_type(client: httpx.Client, server, subject: str) -> None:
    code = unique("med")
    top = _create(client, {k: v for k, v in _medication("", code).items() if k != "id"})
    one = _create(client, _request(subject, _medication("m1", code)))
    two = _create(client, _request(subject, _medication("a", code), _medication("b", code),
                                   _medication("c", unique("other"))))
    base, criteria = server.url, f"code={SYSTEM}|{code}"
    top_url, one_url, two_url = (f"{base}/Medication/{top['id']}", f"{base}/MedicationRequest/{one['id']}",
                                 f"{base}/MedicationRequest/{two['id']}")

    plain = _search(client, criteria)
    assert _urls(plain) == [top_url] and plain["total"] == 1
    assert _urls(_search(client, f"{criteria}&_contained=false")) == [top_url]

    containers = _search(client, f"{criteria}&_contained=true")
    assert _urls(containers) == sorted([one_url, two_url]) and containers["total"] == 2
    assert {e["resource"]["resourceType"] for e in containers["entry"]} == {"MedicationRequest"}
    assert "outcome" not in {e["search"]["mode"] for e in containers["entry"]}
    assert _urls(_search(client, f"{criteria}&_contained=true&_containedType=container")) == _urls(containers)

    both = _search(client, f"{criteria}&_contained=both")
    assert _urls(both) == sorted([top_url, one_url, two_url]) and both["total"] == 3

    inner = _search(client, f"{criteria}&_contained=true&_containedType=contained")
    assert _urls(inner) == sorted([f"{one_url}#m1", f"{two_url}#a", f"{two_url}#b"]) and inner["total"] == 3
    assert {e["resource"]["id"]: e["resource"] for e in inner["entry"]}["m1"] == _medication("m1", code)

    everything = _search(client, f"{criteria}&_contained=both&_containedType=contained")
    assert _urls(everything) == sorted([top_url, f"{one_url}#m1", f"{two_url}#a", f"{two_url}#b"])
    assert _search(client, f"{criteria}&_contained=true&_summary=count")["total"] == 2


def test_paging_containers_and_contained(client: httpx.Client, server, subject: str) -> None:
    code = unique("page")
    holders = [_create(client, _request(subject, _medication("x", code), _medication("y", code)))
               for _ in range(3)]
    pages = _pages(client, f"/Medication?code={SYSTEM}|{code}&_contained=true&_count=2")
    found = [e["resource"]["id"] for p in pages for e in p.get("entry", ())]
    assert len(pages) == 2 and sorted(found) == sorted(h["id"] for h in holders)
    assert all(p["total"] == 3 for p in pages)

    pages = _pages(client, f"/Medication?code={SYSTEM}|{code}&_contained=true&_containedType=contained&_count=4")
    urls = [e["fullUrl"] for p in pages for e in p.get("entry", ())]
    assert len(pages) == 2 and len(urls) == 6 == len(set(urls)) and pages[0]["total"] == 6
    back = client.get(_link(pages[1], "previous")).json()
    assert [e["fullUrl"] for e in back["entry"]] == urls[:4]


def test_writes_keep_the_index_in_step(client: httpx.Client, subject: str) -> None:
    old, new, patched = unique("old"), unique("new"), unique("patched")
    holder = _create(client, _request(subject, _medication("m", old)))
    query = "&_contained=true&_containedType=contained"
    assert len(_search(client, f"code={SYSTEM}|{old}{query}").get("entry", ())) == 1

    replaced = _request(subject, _medication("n", new)) | {"id": holder["id"]}
    assert client.put(f"/MedicationRequest/{holder['id']}", json=replaced, headers=fhir_headers()).status_code == 200
    assert "entry" not in _search(client, f"code={SYSTEM}|{old}{query}")
    assert _urls(_search(client, f"code={SYSTEM}|{new}{query}"))[0].endswith(f"/MedicationRequest/{holder['id']}#n")

    patch = [{"op": "replace", "path": "/contained/0/code/coding/0/code", "value": patched}]
    response = client.patch(f"/MedicationRequest/{holder['id']}", json=patch,
                            headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 200, response.text
    assert "entry" not in _search(client, f"code={SYSTEM}|{new}{query}")
    assert _search(client, f"code={SYSTEM}|{patched}{query}")["total"] == 1

    emptied = _request(subject) | {"id": holder["id"]}
    assert client.put(f"/MedicationRequest/{holder['id']}", json=emptied, headers=fhir_headers()).status_code == 200
    assert _search(client, f"code={SYSTEM}|{patched}&_contained=true")["total"] == 0

    again = _create(client, _request(subject, _medication("m", old)))
    assert client.delete(f"/MedicationRequest/{again['id']}").status_code in (200, 204)
    assert _search(client, f"code={SYSTEM}|{old}&_contained=both")["total"] == 0


def test_transaction_bundles_index_contained_resources(client: httpx.Client, subject: str) -> None:
    before, created, updated = unique("before"), unique("created"), unique("updated")
    existing = _create(client, _request(subject, _medication("m", before)))
    body = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:4f1c7a52-5d0e-4b1e-9a55-0d3c2a1e9b01",
         "resource": _request(subject, _medication("m", created)),
         "request": {"method": "POST", "url": "MedicationRequest"}},
        {"resource": _request(subject, _medication("m", updated)) | {"id": existing["id"]},
         "request": {"method": "PUT", "url": f"MedicationRequest/{existing['id']}"}}]}
    response = client.post("/", json=body, headers=fhir_headers())
    assert response.status_code == 200, response.text
    new_id = response.json()["entry"][0]["response"]["location"].split("MedicationRequest/")[1].split("/")[0]
    assert [e["resource"]["id"] for e in _search(client, f"code={SYSTEM}|{created}&_contained=true")["entry"]] == [
        new_id]
    assert [e["resource"]["id"] for e in _search(client, f"code={SYSTEM}|{updated}&_contained=true")["entry"]] == [
        existing["id"]]
    assert _search(client, f"code={SYSTEM}|{before}&_contained=true")["total"] == 0


def test_a_contained_match_never_reveals_an_unreadable_container(server, client: httpx.Client) -> None:
    code = unique("scoped")
    mine, theirs = (_create(client, patient())["id"] for _ in range(2))
    my_request = _create(client, _request(f"Patient/{mine}", _medication("m", code)))
    _create(client, _request(f"Patient/{theirs}", _medication("m", code)))
    access = OnePatient(mine)
    criteria = ("code", f"{SYSTEM}|{code}")

    def search(*params: tuple[str, str]) -> Json:
        response = _perform(server, access, "GET", "Medication", [criteria, *params])
        assert response.status == 200, response.resource
        return response.resource

    containers = search(("_contained", "true"))
    assert [e["resource"]["id"] for e in containers["entry"]] == [my_request["id"]] and containers["total"] == 1
    inner = search(("_contained", "both"), ("_containedType", "contained"))
    assert [e["fullUrl"] for e in inner["entry"]] == [f"{server.url}/MedicationRequest/{my_request['id']}#m"]
    assert inner["total"] == 1
    assert search(("_contained", "true"), ("_containedType", "contained"), ("_summary", "count"))["total"] == 1


@pytest.mark.parametrize("query", [
    "_contained=sometimes",
    "_containedType=itself",
    "_contained=true&_include=Medication:manufacturer",
    "_contained=true&_sort=code",
])
def test_unsupported_combinations_are_400(client: httpx.Client, query: str) -> None:
    response = client.get(f"/Medication?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_sorting_contained_resources(client: httpx.Client, subject: str) -> None:
    prefix = unique("sort")
    _create(client, _request(subject, _medication("b", f"{prefix}-b"), _medication("a", f"{prefix}-a")))
    _create(client, _request(subject, _medication("c", f"{prefix}-c")))
    bundle = _search(client, f"code={SYSTEM}|{prefix}-a,{SYSTEM}|{prefix}-b,{SYSTEM}|{prefix}-c"
                             "&_contained=true&_containedType=contained&_sort=-code")
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["c", "b", "a"]


def test_reindex_rebuilds_the_contained_index(client: httpx.Client, subject: str) -> None:
    code, lot = unique("lot").lower(), unique("L")
    holder = _create(client, _request(subject, _medication("m", unique("any")) | {"batch": {"lotNumber": lot}}))
    definition = {"resourceType": "SearchParameter", "url": f"urn:test:sp:{code}", "name": code, "status": "active",
                  "description": "test parameter", "code": code, "base": ["Medication"], "type": "token",
                  "expression": "Medication.batch.lotNumber"}
    parameter = _create(client, definition)
    query = f"{code}={lot}&_contained=true"
    assert _search(client, query)["total"] == 0
    reindexed = client.post("/Medication/$reindex")
    assert reindexed.status_code == 200, reindexed.text
    assert [e["resource"]["id"] for e in _search(client, query)["entry"]] == [holder["id"]]
    assert client.delete(f"/SearchParameter/{parameter['id']}").status_code == 204


def test_chains_reach_from_contained_resources(client: httpx.Client, subject: str) -> None:
    name = unique("Maker")
    maker = _create(client, {"resourceType": "Organization", "name": name})
    holder = _create(client, _request(subject, _medication("m", unique("any"))
                                      | {"manufacturer": {"reference": f"Organization/{maker['id']}"}}))
    found = _search(client, f"manufacturer.name={name}&_contained=true")
    assert [e["resource"]["id"] for e in found["entry"]] == [holder["id"]]
    assert _search(client, f"manufacturer.name={name}")["total"] == 0


def test_reindex_restores_the_contained_documents_of_older_containers(client: httpx.Client, server, mongo,
                                                                      subject: str) -> None:
    code = unique("legacy")
    holder = _create(client, _request(subject, _medication("m", code)))
    # As stored before contained resources were indexed.
    mongo[server.settings.database_name]["contained"].delete_many({"c": f"MedicationRequest/{holder['id']}"})
    assert _search(client, f"code={SYSTEM}|{code}&_contained=true")["total"] == 0
    reindexed = client.post("/MedicationRequest/$reindex")
    assert reindexed.status_code == 200, reindexed.text
    assert reindexed.json()["parameter"][0]["part"][1]["valueInteger"] >= 1
    assert [e["resource"]["id"] for e in _search(client, f"code={SYSTEM}|{code}&_contained=true")["entry"]] == [
        holder["id"]]


def test_a_token_that_may_not_read_the_containers_finds_no_contained_match(client: httpx.Client, server,
                                                                            subject: str) -> None:
    code = unique("unreadable")
    top = _create(client, {k: v for k, v in _medication("", code).items() if k != "id"})
    _create(client, _request(subject, _medication("m", code)))
    client_id, key = register_backend_client(server.settings, scope="system/Medication.rs")
    auth = BackendAuth(server.url, client_id, key, "system/Medication.rs")
    with httpx.Client(base_url=server.url, auth=auth, timeout=60) as medications_only:
        def found(query: str) -> list[str]:
            response = medications_only.get(f"/Medication?code={SYSTEM}|{code}&{query}")
            assert response.status_code == 200, response.text
            assert response.json()["total"] == len(response.json().get("entry", ()))
            return [e["resource"]["id"] for e in response.json().get("entry", ())]

        assert found("_contained=true") == []
        assert found("_contained=true&_containedType=contained") == []
        assert found("_contained=both") == [top["id"]]
        assert found("_contained=both&_containedType=contained") == [top["id"]]


def test_both_when_the_container_has_the_searched_type(client: httpx.Client, subject: str) -> None:
    code = unique("panel")

    def observation(**fields: Any) -> Json:
        return {"resourceType": "Observation", "status": "final", "subject": {"reference": subject}, **fields}

    coded = {"coding": [{"system": SYSTEM, "code": code}]}
    plain = _create(client, observation(code=coded))
    panel = _create(client, observation(code={"text": "panel"}, hasMember=[{"reference": "#member"}],
                                        contained=[{"resourceType": "Observation", "id": "member",
                                                    "status": "final", "code": coded}]))
    pages = _pages(client, f"/Observation?code={SYSTEM}|{code}&_contained=both&_count=1")
    assert sorted(e["resource"]["id"] for p in pages for e in p["entry"]) == sorted([plain["id"], panel["id"]])
    assert pages[0]["total"] == 2
    # The contained Observation is in its container's Patient compartment.
    in_compartment = client.get(f"/{subject}/Observation?code={SYSTEM}|{code}&_contained=true").json()
    assert [e["resource"]["id"] for e in in_compartment["entry"]] == [panel["id"]]
