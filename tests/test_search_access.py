"""The caller's access restriction limits every query a search runs: matches, totals, chains,
`_has`, includes, revincludes, compartment and system search, and conditional matching.

The interactions are performed through `dispatch.perform` (the entry point HTTP and Bundles
use) against the live server's real database, with an `Access` that confines the caller to one
patient's compartment, the way patient-scoped tokens do.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from fhir_server.fhir.outcome import FhirError
from fhir_server.interactions.dispatch import perform
from fhir_server.interactions.model import Context, FhirRequest
from fhir_server.search import compartments
from fhir_server.search.extract import extract
from fhir_server.storage import Database, ResourceStore
from tests.fhir_data import fhir_headers, patient, unique


class OnePatient:
    """Sees only `Patient/<id>`'s compartment; may not touch Organization at all."""

    principal = None

    def __init__(self, patient_id: str) -> None:
        self.patient_id = patient_id

    def require(self, code: str, resource_type: str | None) -> None:
        if resource_type == "Organization":
            raise FhirError(403, "forbidden", "no Organization access")

    def restrict(self, resource_type: str) -> dict[str, Any] | None:
        return {f"sp.{compartments.KEY}": f"Patient/{self.patient_id}"}

    def check_written(self, version: Any) -> None:
        return None


@pytest.fixture
def world(client: httpx.Client) -> dict[str, Any]:
    def create(resource: dict) -> dict:
        response = client.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
        assert response.status_code == 201, response.text
        return response.json()

    family, code = unique("Acc"), unique("code")
    mine, theirs = create(patient(name=[{"family": family}])), create(patient(name=[{"family": family}]))
    observations = {
        owner["id"]: create({"resourceType": "Observation", "status": "final",
                             "code": {"coding": [{"system": "urn:c", "code": code}]},
                             "subject": {"reference": f"Patient/{owner['id']}"}})
        for owner in (mine, theirs)}
    return {"family": family, "code": code, "mine": mine["id"], "theirs": theirs["id"], "obs": observations}


def _perform(server, access: OnePatient, method: str, path: str, params: list[tuple[str, str]]) -> Any:
    async def run() -> Any:
        database = Database(server.settings.mongodb_uri, server.settings.database_name)
        try:
            store = ResourceStore(database, indexer=extract, membership_field=compartments.KEY)
            ctx = Context(server.settings, database, store, server.url, access=access)
            return await perform(ctx, FhirRequest(method, path, params))
        finally:
            await database.close()

    return asyncio.run(run())


def _ids(response: Any) -> list[str]:
    assert response.status == 200, response.resource
    return sorted(e["resource"]["id"] for e in response.resource.get("entry", ())
                  if e["search"]["mode"] != "outcome")


def test_every_search_query_honours_the_restriction(server, world: dict[str, Any]) -> None:
    access = OnePatient(world["mine"])
    mine_obs, their_obs = world["obs"][world["mine"]]["id"], world["obs"][world["theirs"]]["id"]

    def search(path: str, *params: tuple[str, str]) -> Any:
        return _perform(server, access, "GET", path, list(params))

    found = search("Patient", ("family", world["family"]))
    assert _ids(found) == [world["mine"]] and found.resource["total"] == 1
    assert {v.id for v in found.touched} == {world["mine"]}
    assert _ids(search("Observation", ("subject:Patient.family", world["family"]))) == [mine_obs]
    assert _ids(search("Patient", ("_has:Observation:subject:code", f"urn:c|{world['code']}"))) == [world["mine"]]
    included = search("Observation", ("code", f"urn:c|{world['code']}"), ("_include", "Observation:subject"))
    assert _ids(included) == sorted([mine_obs, world["mine"]])
    assert _ids(search("Patient", ("family", world["family"]), ("_revinclude", "Observation:subject"))) == sorted(
        [world["mine"], mine_obs])
    assert _ids(search(f"Patient/{world['theirs']}/Observation")) == []
    assert _ids(search("", ("_type", "Observation"), ("code", f"urn:c|{world['code']}"))) == [mine_obs]
    assert their_obs not in _ids(search("Observation", ("_id", their_obs)))


def test_including_a_forbidden_type_is_403(server, client: httpx.Client) -> None:
    org = client.post("/Organization", json={"resourceType": "Organization", "name": unique("Org")},
                      headers=fhir_headers()).json()
    member = client.post("/Patient", json=patient(managingOrganization={"reference": f"Organization/{org['id']}"}),
                         headers=fhir_headers()).json()
    access = OnePatient(member["id"])
    plain = _perform(server, access, "GET", "Patient", [("_id", member["id"])])
    assert _ids(plain) == [member["id"]]
    response = _perform(server, access, "GET", "Patient", [("_id", member["id"]),
                                                          ("_include", "Patient:organization")])
    assert response.status == 403


def test_conditional_matching_cannot_reach_outside(server, world: dict[str, Any]) -> None:
    response = _perform(server, OnePatient(world["mine"]), "DELETE", "Observation",
                        [("code", f"urn:c|{world['code']}")])
    assert response.status == 204
    theirs = world["obs"][world["theirs"]]["id"]
    check = _perform(server, OnePatient(world["theirs"]), "GET", "Observation", [("_id", theirs)])
    assert _ids(check) == [theirs]


def test_system_search_checks_each_named_type(server, world: dict[str, Any]) -> None:
    access = OnePatient(world["mine"])
    assert _perform(server, access, "GET", "", [("_type", "Organization")]).status == 403
    everywhere = _perform(server, access, "GET", "", [("_id", world["mine"])])
    assert _ids(everywhere) == [world["mine"]]
