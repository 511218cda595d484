"""The MedicalCycle Cloud export as transaction Bundles: shape, validity, and an import that
reads back losslessly and updates in place when run again."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from fhir_server.validation import validate_resource
from mappings import patients
from mappings.export_file import bundles_from_export, read_export
from tests.conftest import LiveServer
from tests.test_import import run_import

SAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "medicalcycle-export.json"


def import_file(server: LiveServer, http: httpx.Client, path: Path) -> list[dict]:
    """`fhir-server import --from medicalcycle PATH` into `server`'s database; the resources it wrote."""
    result = run_import(server, "--from", "medicalcycle", str(path))
    assert result.returncode == 0, result.stderr
    entries = [e for b in bundles_from_export(path) for e in b["entry"]]
    assert f"{len(entries)} resources from 1 files" in result.stderr
    return [http.get(e["request"]["url"]).json() for e in entries]


@pytest.fixture
def fresh(make_server) -> tuple[LiveServer, httpx.Client]:
    """A server with a database of its own, so its type histories hold only what the import wrote."""
    server = make_server()
    with httpx.Client(base_url=server.url, auth=server.auth, headers={"Accept": "application/fhir+json"},
                      timeout=60) as http:
        yield server, http


def test_one_bundle_for_the_users_then_one_per_patient() -> None:
    bundles = list(bundles_from_export(SAMPLE))
    export = read_export(SAMPLE)
    assert len(bundles) == 1 + len(export.patients)
    assert {e["resource"]["resourceType"] for e in bundles[0]["entry"]} == {"Practitioner", "PractitionerRole"}
    for bundle, patient in zip(bundles[1:], export.patients, strict=True):
        assert bundle["type"] == "transaction"
        first = bundle["entry"][0]["resource"]
        assert first["resourceType"] == "Patient"
        assert {"system": "https://medicalcycle.example/fhir/sid/mrn", "value": patient.id} in first["identifier"]
    for entry in (e for b in bundles for e in b["entry"]):
        resource = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        assert validate_resource(resource) == []


def test_the_patient_account_links_to_the_record() -> None:
    identifiers = list(bundles_from_export(SAMPLE))[1]["entry"][0]["resource"]["identifier"]
    assert {"system": "https://medicalcycle.example/fhir/sid/account", "value": "u-900"} in identifiers
    assert {"system": "https://medicalcycle.example/fhir/sid/username", "value": "joao.pereira"} in identifiers


def test_imported_records_read_back_losslessly(fresh: tuple[LiveServer, httpx.Client]) -> None:
    server, http = fresh
    import_file(server, http, SAMPLE)
    for bundle, patient in zip(list(bundles_from_export(SAMPLE))[1:], read_export(SAMPLE).patients, strict=True):
        stored = [http.get(e["request"]["url"]).json() for e in bundle["entry"]]
        assert patients.from_fhir(stored) == patient


def test_importing_again_updates_instead_of_duplicating(fresh: tuple[LiveServer, httpx.Client],
                                                        tmp_path: Path) -> None:
    server, http = fresh
    first = import_file(server, http, SAMPLE)
    assert {r["meta"]["versionId"] for r in first} == {"1"}
    changed = json.loads(SAMPLE.read_text())
    changed["patients"][0]["phone"] = "+351919999999"
    changed["patients"][0]["prescriptions"][0]["refills"] = 5
    path = tmp_path / "again.json"
    path.write_text(json.dumps(changed))
    second = import_file(server, http, path)
    assert [(r["resourceType"], r["id"]) for r in second] == [(r["resourceType"], r["id"]) for r in first]
    assert {r["meta"]["versionId"] for r in second} == {"2"}
    by_type = Counter(r["resourceType"] for r in first)
    for resource_type, count in by_type.items():
        history = http.get(f"{resource_type}/_history", params={"_count": "500"}).json()
        assert len({e["resource"]["id"] for e in history["entry"] if "resource" in e}) == count
    patient_id = next(r["id"] for r in first if r["resourceType"] == "Patient")
    patient = http.get(f"Patient/{patient_id}").json()
    assert {"system": "phone", "value": "+351919999999"} in patient["telecom"]
    request = next(r for r in second if r["resourceType"] == "MedicationRequest")
    assert http.get(f"MedicationRequest/{request['id']}").json()["dispenseRequest"]["numberOfRepeatsAllowed"] == 5


def test_a_file_that_is_not_an_export_is_reported(server: LiveServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "medicalcycle-export", "version": 1, "patients": [{"id": "p"}]}))
    result = run_import(server, "--from", "medicalcycle", str(bad))
    assert result.returncode == 1
    assert "not a MedicalCycle Cloud export" in result.stderr and "givenName" in result.stderr
