"""Cross-patient isolation: a token limited to patient A's compartment never sees or changes B's data.

Two patients, each with an Observation; A's token (`patient/*.cruds`, patient A, obtained through
a real EHR launch) is tried on every interaction against both. Search features (include, chains,
`_has`, compartment search) and Bundles are exercised too when the server has them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient
from tests.smart import HTTP, BearerAuth, authorize, create_user, exchange, register_app

LAB = "http://terminology.hl7.org/CodeSystem/observation-category"


def observation(patient_id: str, **fields: object) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "identifier": [{"system": "urn:test:obs", "value": uuid.uuid4().hex}],
            "category": [{"coding": [{"system": LAB, "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": f"Patient/{patient_id}"}, **fields}


def patient_token(server: LiveServer, patient_id: str, scope: str = "launch patient/*.cruds") -> str:
    """A token for `patient_id`'s compartment: a doctor opens an app in an EHR launch for that patient."""
    launch = HTTP.post(f"{server.url}/auth/launch", json={"patient": patient_id}, auth=server.auth).json()["launch"]
    doctor = create_user(server.settings, "doctor", "Practitioner/dr-iso")
    app, _ = register_app(server.settings, scope)
    query, verifier = authorize(server.url, app, scope, doctor.username, launch=launch)
    body = exchange(server.url, app, query["code"][0], verifier).json()
    assert body["patient"] == patient_id
    return body["access_token"]


class World:
    def __init__(self, server: LiveServer, client: httpx.Client) -> None:
        self.a = client.post("/Patient", json=patient(), headers=fhir_headers()).json()["id"]
        self.b = client.post("/Patient", json=patient(), headers=fhir_headers()).json()["id"]
        self.obs_a = client.post("/Observation", json=observation(self.a), headers=fhir_headers()).json()
        self.obs_b = client.post("/Observation", json=observation(self.b), headers=fhir_headers()).json()
        self.http = httpx.Client(base_url=server.url, auth=BearerAuth(patient_token(server, self.a)), timeout=60,
                                 headers={"Accept": "application/fhir+json"})
        self.admin = client

    def unchanged_b(self) -> None:
        current = self.admin.get(f"/Observation/{self.obs_b['id']}")
        assert current.status_code == 200 and current.json()["meta"]["versionId"] == "1"


@pytest.fixture(scope="module")
def world(server: LiveServer) -> Iterator[World]:
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60) as admin:
        yield World(server, admin)


def _ids(bundle: dict) -> set[str]:
    resources = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
    return {f"{r['resourceType']}/{r['id']}" for r in resources}


def test_reads_inside_and_outside(world: World) -> None:
    assert world.http.get(f"/Patient/{world.a}").status_code == 200
    assert world.http.get(f"/Observation/{world.obs_a['id']}").status_code == 200
    history = world.http.get(f"/Observation/{world.obs_b['id']}/_history").json()
    assert history["total"] == 0 and not history.get("entry")  # as for an unknown id
    for path in (f"/Patient/{world.b}", f"/Observation/{world.obs_b['id']}",
                 f"/Observation/{world.obs_b['id']}/_history/1"):
        response = world.http.get(path)
        assert response.status_code == 404, path
        # Exactly what an unknown id gets: nothing tells the resource exists.
        unknown = world.http.get(path.replace(path.split("/")[2], uuid.uuid4().hex))
        assert response.json()["issue"][0]["code"] == unknown.json()["issue"][0]["code"] == "not-found"


def test_type_and_system_history_show_only_the_compartment(world: World) -> None:
    for path in ("/Observation/_history", "/_history", "/Patient/_history"):
        response = world.http.get(path, params={"_count": 1000})
        assert response.status_code == 200, path
        seen = _ids(response.json())
        assert f"Observation/{world.obs_b['id']}" not in seen and f"Patient/{world.b}" not in seen, path
    assert f"Observation/{world.obs_a['id']}" in _ids(world.http.get("/Observation/_history").json())


def test_writes_outside_are_refused_and_nothing_changes(world: World) -> None:
    obs_b = world.obs_b
    assert world.http.put(f"/Observation/{obs_b['id']}", json={**obs_b, "status": "amended"},
                          headers=fhir_headers()).status_code == 404
    hijack = {**obs_b, "status": "amended", "subject": {"reference": f"Patient/{world.a}"}}
    assert world.http.put(f"/Observation/{obs_b['id']}", json=hijack, headers=fhir_headers()).status_code == 404
    patch = [{"op": "replace", "path": "/status", "value": "amended"}]
    assert world.http.patch(f"/Observation/{obs_b['id']}", json=patch,
                            headers={"Content-Type": "application/json-patch+json"}).status_code == 404
    assert world.http.delete(f"/Observation/{obs_b['id']}").status_code == 404
    world.unchanged_b()


def test_creating_or_moving_data_out_of_the_compartment_is_403(world: World) -> None:
    created = world.http.post("/Observation", json=observation(world.b), headers=fhir_headers())
    assert created.status_code == 403 and created.json()["resourceType"] == "OperationOutcome"
    mine = world.http.post("/Observation", json=observation(world.a), headers=fhir_headers())
    assert mine.status_code == 201
    moved = {**mine.json(), "subject": {"reference": f"Patient/{world.b}"}}
    refused = world.http.put(f"/Observation/{moved['id']}", json=moved, headers=fhir_headers())
    assert refused.status_code == 403
    assert world.admin.get(f"/Observation/{moved['id']}").json()["meta"]["versionId"] == "1"  # rolled back
    as_create = world.http.put(f"/Observation/{uuid.uuid4().hex}", json={**observation(world.b)},
                               headers=fhir_headers())
    assert as_create.status_code in (400, 403)  # ids must match; never a write into B's compartment


def test_conditional_interactions_do_not_reach_outside(world: World) -> None:
    identifier = world.obs_b["identifier"][0]
    criteria = {"identifier": f"{identifier['system']}|{identifier['value']}"}
    deleted = world.http.delete("/Observation", params=criteria)
    assert deleted.status_code in (200, 204)
    refused = world.http.put("/Observation", params=criteria, json=observation(world.b), headers=fhir_headers())
    assert refused.status_code == 403
    world.unchanged_b()


def test_hidden_status_403_by_configuration(make_server) -> None:
    live = make_server(hidden_status=403)
    with httpx.Client(base_url=live.url, auth=live.auth, timeout=60) as admin:
        other = World(live, admin)
        response = other.http.get(f"/Observation/{other.obs_b['id']}")
        assert response.status_code == 403 and response.json()["issue"][0]["code"] == "forbidden"
        assert other.http.get(f"/Observation/{uuid.uuid4().hex}").status_code == 404


def _search(world: World, path: str, **params: str) -> dict:
    response = world.http.get(path, params=params)
    if response.status_code == 501:
        pytest.xfail("search interactions are not in main yet (search branch)")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("path", "params"), [
    ("/Observation", {}),
    ("/Observation", {"_include": "Observation:subject"}),
    ("/Patient", {"_revinclude": "Observation:subject"}),
    ("/Observation", {"subject:Patient.gender": "female"}),
    ("/Patient", {"_has:Observation:subject:status": "final"}),
    (None, {}),  # compartment search of patient B
    ("", {"_type": "Observation,Patient"}),
])
def test_searches_return_only_the_compartment(world: World, path: str | None, params: dict) -> None:
    bundle = _search(world, path if path is not None else f"/Patient/{world.b}/Observation", **params)
    seen = _ids(bundle)
    assert f"Observation/{world.obs_b['id']}" not in seen and f"Patient/{world.b}" not in seen


def test_v2_parameter_restriction(server: LiveServer, world: World) -> None:
    vital = world.admin.post("/Observation", headers=fhir_headers(), json=observation(
        world.a, category=[{"coding": [{"system": LAB, "code": "vital-signs"}]}])).json()
    token = patient_token(server, world.a, "launch patient/Observation.rs?category=laboratory")
    with httpx.Client(base_url=server.url, auth=BearerAuth(token), timeout=60) as http:
        assert http.get(f"/Observation/{world.obs_a['id']}").status_code == 200
        assert http.get(f"/Observation/{vital['id']}").status_code == 404
        assert http.get(f"/Patient/{world.a}").status_code == 403  # no scope on Patient at all


def test_batch_entries_are_each_checked(world: World) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Observation/{world.obs_a['id']}"}},
        {"request": {"method": "GET", "url": f"Observation/{world.obs_b['id']}"}},
        {"request": {"method": "DELETE", "url": f"Observation/{world.obs_b['id']}"}},
    ]}
    response = world.http.post("/", json=bundle, headers=fhir_headers())
    if response.status_code == 501:
        pytest.xfail("batch Bundles are not in main yet (bundles branch)")
    statuses = [e["response"]["status"].split()[0] for e in response.json()["entry"]]
    assert statuses[0] == "200" and statuses[1] == "404" and statuses[2] == "404"
    world.unchanged_b()


def test_patient_everything_stays_in_the_compartment(world: World) -> None:
    mine = world.http.get(f"/Patient/{world.a}/$everything")
    assert mine.status_code == 200, mine.text
    seen = _ids(mine.json())
    assert f"Observation/{world.obs_a['id']}" in seen and f"Observation/{world.obs_b['id']}" not in seen
    theirs = world.http.get(f"/Patient/{world.b}/$everything")
    assert theirs.status_code == 404 or not _ids(theirs.json())
