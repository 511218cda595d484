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


def test_paging_visits_every_match_once_while_data_changes(client: httpx.Client) -> None:
    family = unique("Page")
    ids = [_create(client, patient(name=[{"family": family}], birthDate=f"19{50 + n}-01-01"))["id"]
           for n in range(7)]
    first = client.get(f"/Patient?family={family}&_sort=-birthdate&_count=3").json()
    assert first["total"] == 7 and len(_ids(first)) == 3
    # Writes between pages: a new match sorting before the page boundary, one deleted ahead of it.
    newest = _create(client, patient(name=[{"family": family}], birthDate="2010-01-01"))["id"]
    assert client.delete(f"/Patient/{ids[0]}").status_code == 204
    rest = _pages(client, _link(first, "next"))
    seen = _ids(first) + [i for page in rest for i in _ids(page)]
    assert seen == [ids[6], ids[5], ids[4], ids[3], ids[2], ids[1]]
    back = _pages(client, _link(rest[-1], "self"), "previous")
    assert [i for page in reversed(back) for i in _ids(page)] == [newest, *seen]


@pytest.mark.parametrize("sort", ["given", "-given", "_lastUpdated", "-_id", "birthdate,-given"])
def test_paging_with_multivalued_sort_keys_matches_one_big_page(client: httpx.Client, sort: str) -> None:
    family = unique("Multi")
    for n in range(9):
        given = [chr(ord("a") + (n * 5) % 9), chr(ord("a") + (n * 7) % 9)][: 1 + n % 2]
        _create(client, patient(name=[{"family": family, "given": given}], birthDate=f"19{60 + n % 3}-01-01"))
    whole = _ids(client.get(f"/Patient?family={family}&_sort={sort}&_count=100").json())
    paged = [i for page in _pages(client, f"/Patient?family={family}&_sort={sort}&_count=2") for i in _ids(page)]
    assert paged == whole and len(whole) == 9


@pytest.mark.parametrize("stored", [3, 4, 5])
def test_total_is_exact_whether_or_not_the_first_page_holds_every_match(client: httpx.Client, stored: int) -> None:
    # A first page with room to spare is its own total; a full one needs the count.
    family = unique("Total")
    for _ in range(stored):
        _create(client, patient(name=[{"family": family}]))
    pages = _pages(client, f"/Patient?family={family}&_count=4&_sort=birthdate")
    assert [page["total"] for page in pages] == [stored] * len(pages)
    assert sum(len(_ids(page)) for page in pages) == stored


def test_total_and_summary_count(client: httpx.Client) -> None:
    family = unique("Total")
    for _ in range(3):
        _create(client, patient(name=[{"family": family}]))
    assert "total" not in client.get(f"/Patient?family={family}&_total=none").json()
    assert client.get(f"/Patient?family={family}&_total=accurate&_count=1").json()["total"] == 3
    counted = client.get(f"/Patient?family={family}&_summary=count").json()
    assert counted["total"] == 3 and "entry" not in counted


def test_summary_and_elements_trim_and_tag(client: httpx.Client) -> None:
    family = unique("Trim")
    created = _create(client, patient(name=[{"family": family}], text={
        "status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        maritalStatus={"text": "married"}))
    summary = _ids_resources(client.get(f"/Patient?family={family}&_summary=true").json())[0]
    assert "name" in summary and "text" not in summary and "maritalStatus" not in summary
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
    data = _ids_resources(client.get(f"/Patient?family={family}&_summary=data").json())[0]
    assert "text" not in data and "maritalStatus" in data
    text = _ids_resources(client.get(f"/Patient?family={family}&_summary=text").json())[0]
    assert set(text) == {"resourceType", "id", "meta", "text"}
    elements = _ids_resources(client.get(f"/Patient?family={family}&_elements=gender,birthDate").json())[0]
    assert set(elements) == {"resourceType", "id", "meta", "gender", "birthDate"}
    assert elements["gender"] == created["gender"]


def _ids_resources(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def test_include_revinclude_and_iterate(client: httpx.Client) -> None:
    org = _create(client, {"resourceType": "Organization", "name": unique("Org")})
    pat = _create(client, patient(managingOrganization={"reference": f"Organization/{org['id']}"}))
    obs = _create(client, _observation(f"Patient/{pat['id']}"))
    bundle = client.get(f"/Observation?_id={obs['id']}&_include=Observation:subject").json()
    assert _ids(bundle) == [obs["id"]] and _ids(bundle, "include") == [pat["id"]]
    bundle = client.get(f"/Observation?_id={obs['id']}&_include=Observation:subject"
                        "&_include:iterate=Patient:organization").json()
    assert sorted(_ids(bundle, "include")) == sorted([pat["id"], org["id"]])
    bundle = client.get(f"/Observation?_id={obs['id']}&_include=*").json()
    assert _ids(bundle, "include") == [pat["id"]]
    bundle = client.get(f"/Patient?_id={pat['id']}&_revinclude=Observation:subject").json()
    assert _ids(bundle) == [pat["id"]] and _ids(bundle, "include") == [obs["id"]]
    bundle = client.get(f"/Observation?_id={obs['id']}&_include=Observation:subject:Group").json()
    assert _ids(bundle, "include") == []


def test_compartment_search(client: httpx.Client) -> None:
    pat = _create(client, patient())
    other = _create(client, patient())
    obs = _create(client, _observation(f"Patient/{pat['id']}"))
    _create(client, _observation(f"Patient/{other['id']}"))
    enc = _create(client, {"resourceType": "Encounter", "status": "finished",
                           "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{pat['id']}"}})
    assert _ids(client.get(f"/Patient/{pat['id']}/Observation").json()) == [obs["id"]]
    assert _ids(client.get(f"/Patient/{pat['id']}/Observation?code=http://loinc.org|nope").json()) == []
    everything = client.get(f"/Patient/{pat['id']}/*?_count=1000").json()
    # The audit trail of these creates (AuditEvents naming the patient) belongs to the compartment too.
    clinical = [e["resource"]["id"] for e in everything["entry"] if e["resource"]["resourceType"] != "AuditEvent"]
    assert sorted(clinical) == sorted([pat["id"], obs["id"], enc["id"]])
    assert client.get(f"/Observation/{obs['id']}/Patient").status_code == 404


def test_system_search(client: httpx.Client) -> None:
    tag = {"system": "urn:test", "code": unique("tag")}
    pat = _create(client, patient(meta={"tag": [tag]}))
    obs = _create(client, _observation(f"Patient/{pat['id']}", meta={"tag": [tag]}))
    bundle = client.get(f"/?_tag=urn:test|{tag['code']}&_type=Patient,Observation").json()
    assert sorted(_ids(bundle)) == sorted([pat["id"], obs["id"]]) and bundle["total"] == 2
    everywhere = client.get(f"/?_tag=urn:test|{tag['code']}&_count=1").json()
    assert everywhere["total"] == 2
    paged = [i for page in _pages(client, f"/?_tag=urn:test|{tag['code']}&_count=1") for i in _ids(page)]
    assert sorted(paged) == sorted([pat["id"], obs["id"]])
    posted = client.post("/_search", data={"_tag": f"urn:test|{tag['code']}", "_type": "Observation"},
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert _ids(posted.json()) == [obs["id"]]
    assert client.get("/?_type=NoSuchType").status_code == 400


def test_unknown_parameters_lenient_and_strict(client: httpx.Client) -> None:
    family = unique("Lenient")
    created = _create(client, patient(name=[{"family": family}]))
    bundle = client.get(f"/Patient?family={family}&foo=bar").json()
    assert _ids(bundle) == [created["id"]]
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "foo" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    assert "foo" not in _link(bundle, "self")
    strict = client.get(f"/Patient?family={family}&foo=bar", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400 and strict.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("query", ["birthdate=notadate", "gender:above=x", "family:nope=x", "_count=-1",
                                   "_sort=nosuchparam", "_include=Patient:nope", "birthdate=zz2020",
                                   "_summary=maybe", "_total=some", "_cursor=garbage!"])
def test_malformed_values_are_400_naming_the_parameter(client: httpx.Client, query: str) -> None:
    response = client.get(f"/Patient?{query}")
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    name = query.split("=")[0].split(":")[0]
    assert name in str(outcome["issue"])


def test_capability_statement_lists_search_parameters(client: httpx.Client) -> None:
    statement = client.get("/metadata").json()
    rest = statement["rest"][0]
    resources = {r["type"]: r for r in rest["resource"]}
    patient_params = {p["name"]: p for p in resources["Patient"]["searchParam"]}
    assert patient_params["birthdate"]["type"] == "date"
    assert patient_params["birthdate"]["definition"] == "http://hl7.org/fhir/SearchParameter/individual-birthdate"
    assert patient_params["family"]["documentation"]
    assert {"_id", "_lastUpdated", "_tag", "name", "identifier"} <= set(patient_params)
    assert "Observation:subject" in resources["Observation"]["searchInclude"]
    assert "Observation:subject" in resources["Patient"]["searchRevInclude"]
    assert {p["name"] for p in rest["searchParam"]} >= {"_id", "_lastUpdated", "_tag", "_profile"}
    assert {"code": "search-type"} in resources["Patient"]["interaction"]
    assert {"code": "search-system"} in rest["interaction"]


def test_starts_with_on_multivalued_names_needs_one_name_to_match(client: httpx.Client) -> None:
    # "Zed" sorts after "mab" and "Aaa" before it: a range alone would take this for a match.
    tag = unique("tag")
    spread = _create(client, patient(name=[{"family": "Zed", "given": ["Aaa"]}], meta={"tag": [
        {"system": "urn:t", "code": tag}]}))
    hit = _create(client, patient(name=[{"family": "Mabel"}], meta={"tag": [{"system": "urn:t", "code": tag}]}))
    bundle = client.get(f"/Patient?_tag=urn:t|{tag}&name=mab").json()
    assert _ids(bundle) == [hit["id"]] and bundle["total"] == 1
    assert _ids(client.get(f"/Patient?_tag=urn:t|{tag}&name=mab,zed&_sort=name").json()) == [spread["id"], hit["id"]]
