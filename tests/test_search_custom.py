"""Custom SearchParameters become searchable when stored, stop being so when deleted, and
`$reindex` indexes resources stored before the parameter existed."""

from __future__ import annotations

import httpx

from tests.fhir_data import fhir_headers, patient, unique


def _search_parameter(code: str, expression: str = "Patient.maritalStatus", **fields) -> dict:
    return {"resourceType": "SearchParameter", "url": f"urn:test:sp:{code}", "name": code, "status": "active",
            "description": "test parameter", "code": code, "base": ["Patient"], "type": "token",
            "expression": expression, **fields}


def _ids(bundle: dict) -> list[str]:
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match")


def test_custom_parameter_lifecycle_with_reindex(client: httpx.Client) -> None:
    code, status = unique("ms").lower(), unique("S")
    marital = {"coding": [{"system": "urn:ms", "code": status}]}
    before = client.post("/Patient", json=patient(maritalStatus=marital), headers=fhir_headers()).json()
    created = client.post("/SearchParameter", json=_search_parameter(code), headers=fhir_headers())
    assert created.status_code == 201, created.text
    after = client.post("/Patient", json=patient(maritalStatus=marital), headers=fhir_headers()).json()
    url = f"/Patient?{code}=urn:ms|{status}"
    assert _ids(client.get(url, headers={"Prefer": "handling=strict"}).json()) == [after["id"]]
    reindexed = client.post("/Patient/$reindex")
    assert reindexed.status_code == 200, reindexed.text
    counts = {p["part"][0]["valueCode"]: p["part"][1]["valueInteger"] for p in reindexed.json()["parameter"]}
    assert counts["Patient"] >= 1
    assert _ids(client.get(url).json()) == sorted([before["id"], after["id"]])
    statement = client.get("/metadata").json()
    patient_params = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")["searchParam"]
    assert code in {p["name"] for p in patient_params}
    assert client.delete(f"/SearchParameter/{created.json()['id']}").status_code == 204
    assert client.get(url, headers={"Prefer": "handling=strict"}).status_code == 400


def test_updating_a_parameter_changes_what_it_indexes(client: httpx.Client) -> None:
    code = unique("lang").lower()
    language = unique("xx")
    created = client.post("/SearchParameter", json=_search_parameter(code, "Patient.gender"),
                          headers=fhir_headers()).json()
    changed = {**created, "expression": "Patient.communication.language"}
    assert client.put(f"/SearchParameter/{created['id']}", json=changed, headers=fhir_headers()).status_code == 200
    speaker = client.post("/Patient", json=patient(communication=[{"language": {"coding": [
        {"system": "urn:lang", "code": language}]}}]), headers=fhir_headers()).json()
    assert _ids(client.get(f"/Patient?{code}=urn:lang|{language}").json()) == [speaker["id"]]
    client.delete(f"/SearchParameter/{created['id']}")


def test_unusable_definitions_are_refused(client: httpx.Client) -> None:
    broken = client.post("/SearchParameter", json=_search_parameter(unique("b").lower(), "Patient.name.where("),
                         headers=fhir_headers())
    assert broken.status_code == 422 and "expression" in str(broken.json()["issue"])
    no_base = client.post("/SearchParameter", json=_search_parameter(unique("b").lower(), base=["Nope"]),
                          headers=fhir_headers())
    assert no_base.status_code in (400, 422)


def test_system_reindex_and_get_is_refused(client: httpx.Client) -> None:
    reindexed = client.post("/$reindex")
    assert reindexed.status_code == 200, reindexed.text
    # The full-access token may read but not update the audit trail: that index is left alone.
    assert [p["valueCode"] for p in reindexed.json()["parameter"] if p["name"] == "skipped"] == ["AuditEvent"]
    assert client.get("/$reindex").status_code == 405
