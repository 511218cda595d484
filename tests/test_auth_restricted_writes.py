"""SMART v2 scope restrictions (`?category=laboratory`) on writes, with real tokens on a live server.

A restricted scope grants its letters only for resources matching the restriction: what a
create, update or patch would store must match it, and so must what an update, patch or delete
replaces. Refused writes are 403 and store nothing; in a transaction Bundle the whole transaction
fails, in a batch only the entry. A target the token cannot even read stays 404, as for reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient
from tests.smart import BearerAuth, user_token
from tests.test_auth_isolation import LAB, observation, patient_token

JSON_PATCH = {"Content-Type": "application/json-patch+json"}
VITAL = [{"coding": [{"system": LAB, "code": "vital-signs"}]}]
TO_VITAL = [{"op": "replace", "path": "/category/0/coding/0/code", "value": "vital-signs"}]
TO_LAB = [{"op": "replace", "path": "/category/0/coding/0/code", "value": "laboratory"}]


class World:
    """Patients A and B; a laboratory and a vital-signs Observation of A stored by the full-access client."""

    def __init__(self, server: LiveServer, admin: httpx.Client) -> None:
        self.server, self.admin = server, admin
        self.a = admin.post("/Patient", json=patient(), headers=fhir_headers()).json()["id"]
        self.b = admin.post("/Patient", json=patient(), headers=fhir_headers()).json()["id"]
        self.lab = self.stored(observation(self.a))
        self.vital = self.stored(observation(self.a, category=VITAL))

    def stored(self, resource: dict) -> dict:
        response = self.admin.post("/Observation", json=resource, headers=fhir_headers())
        assert response.status_code == 201, response.text
        return response.json()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, auth=BearerAuth(token), timeout=60,
                            headers={"Accept": "application/fhir+json"})

    def user(self, scope: str) -> httpx.Client:
        return self.client(user_token(self.server.url, self.server.settings, "doctor", scope)["access_token"])

    def count(self, resource: dict) -> int:
        """How many Observations carry `resource`'s identifier (seen with full access)."""
        identifier = resource["identifier"][0]
        found = self.admin.get("/Observation", params={
            "identifier": f"{identifier['system']}|{identifier['value']}", "_summary": "count"})
        return found.json()["total"]

    def version(self, resource: dict) -> str:
        return self.admin.get(f"/Observation/{resource['id']}").json()["meta"]["versionId"]


@pytest.fixture(scope="module")
def world(server: LiveServer) -> Iterator[World]:
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60) as admin:
        yield World(server, admin)


def _forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["issue"][0]["code"] == "forbidden"


def test_create_must_match_the_restriction(world: World) -> None:
    with world.user("user/Observation.cru?category=laboratory") as http:
        lab = observation(world.a)
        assert http.post("/Observation", json=lab, headers=fhir_headers()).status_code == 201
        vital = observation(world.a, category=VITAL)
        _forbidden(http.post("/Observation", json=vital, headers=fhir_headers()))
        assert world.count(lab) == 1 and world.count(vital) == 0
        # Conditional create and update-as-create are writes of the same resource.
        identifier = vital["identifier"][0]
        _forbidden(http.post("/Observation", json=vital, headers=fhir_headers(
            **{"If-None-Exist": f"identifier={identifier['system']}|{identifier['value']}"})))
        new_id = uuid.uuid4().hex
        _forbidden(http.put(f"/Observation/{new_id}", json={**vital, "id": new_id}, headers=fhir_headers()))
        assert world.count(vital) == 0


def test_update_and_patch_may_not_leave_the_restriction(world: World) -> None:
    with world.user("user/Observation.cru?category=laboratory") as http:
        created = http.post("/Observation", json=observation(world.a), headers=fhir_headers()).json()
        moved = {**created, "category": VITAL}
        _forbidden(http.put(f"/Observation/{created['id']}", json=moved, headers=fhir_headers()))
        _forbidden(http.patch(f"/Observation/{created['id']}", json=TO_VITAL, headers=JSON_PATCH))
        assert world.version(created) == "1"
        kept = http.put(f"/Observation/{created['id']}", json={**created, "status": "amended"}, headers=fhir_headers())
        assert kept.status_code == 200, kept.text


def test_a_target_outside_the_read_restriction_stays_hidden(world: World) -> None:
    with world.user("user/Observation.cruds?category=laboratory") as http:
        vital = world.vital
        assert http.put(f"/Observation/{vital['id']}", json={**vital, "category": observation("x")["category"]},
                        headers=fhir_headers()).status_code == 404
        assert http.patch(f"/Observation/{vital['id']}", json=TO_LAB, headers=JSON_PATCH).status_code == 404
        assert http.delete(f"/Observation/{vital['id']}").status_code == 404
    assert world.version(vital) == "1"


def test_a_visible_target_outside_the_write_restriction_is_forbidden(world: World) -> None:
    vital = world.stored(observation(world.a, category=VITAL))
    with world.user("user/Observation.rs user/Observation.cud?category=laboratory") as http:
        assert http.get(f"/Observation/{vital['id']}").status_code == 200
        # Turning it into a laboratory Observation would make it match: what it replaces must match too.
        _forbidden(http.put(f"/Observation/{vital['id']}", json={**vital, "category": observation("x")["category"]},
                            headers=fhir_headers()))
        _forbidden(http.patch(f"/Observation/{vital['id']}", json=TO_LAB, headers=JSON_PATCH))
        _forbidden(http.delete(f"/Observation/{vital['id']}"))
        identifier = vital["identifier"][0]
        _forbidden(http.delete("/Observation", params={"identifier": f"{identifier['system']}|{identifier['value']}"}))
        assert world.version(vital) == "1"
        lab = world.stored(observation(world.a))
        assert http.delete(f"/Observation/{lab['id']}").status_code == 204


def test_patient_launch_restriction_and_compartment_both_hold(world: World) -> None:
    token = patient_token(world.server, world.a, "launch patient/Observation.cru?category=laboratory")
    with world.client(token) as http:
        mine = observation(world.a)
        assert http.post("/Observation", json=mine, headers=fhir_headers()).status_code == 201
        vital = observation(world.a, category=VITAL)
        _forbidden(http.post("/Observation", json=vital, headers=fhir_headers()))
        other = observation(world.b)
        _forbidden(http.post("/Observation", json=other, headers=fhir_headers()))
        assert world.count(mine) == 1 and world.count(vital) == 0 and world.count(other) == 0


def _bundle(kind: str, *resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r, "request": {"method": "POST", "url": "Observation"}}
        for r in resources]}


def test_a_transaction_with_one_entry_outside_fails_whole(world: World) -> None:
    lab, vital = observation(world.a), observation(world.a, category=VITAL)
    with world.user("user/Observation.cru?category=laboratory") as http:
        response = http.post("/", json=_bundle("transaction", lab, vital), headers=fhir_headers())
    assert response.status_code == 403, response.text
    assert world.count(lab) == 0 and world.count(vital) == 0


def test_a_batch_refuses_only_the_entry_outside(world: World) -> None:
    lab, vital = observation(world.a), observation(world.a, category=VITAL)
    with world.user("user/Observation.cru?category=laboratory") as http:
        response = http.post("/", json=_bundle("batch", lab, vital), headers=fhir_headers())
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"].split()[0] for e in response.json()["entry"]]
    assert statuses == ["201", "403"]
    assert world.count(lab) == 1 and world.count(vital) == 0
