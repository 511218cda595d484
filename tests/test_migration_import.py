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
from tests.fhir_data import fhir_headers

SAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "medicalcycle-export.json"


def import_file(http: httpx.Client, path: Path) -> list[dict]:
    """Write every entry of every Bundle the export gives; the written resources."""
    written = []
    for bundle in bundles_from_export(path):
        for entry in bundle["entry"]:
            response = http.put(entry["request"]["url"], json=entry["resource"], headers=fhir_headers())
            assert response.status_code in (200, 201), response.text
            written.append(response.json())
    return written


@pytest.fixture
def fresh(make_server) -> httpx.Client:
    with httpx.Client(base_url=make_server().url, headers={"Accept": "application/fhir+json"}, timeout=60) as http:
        yield http


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


def test_imported_records_read_back_losslessly(fresh: httpx.Client) -> None:
    import_file(fresh, SAMPLE)
    for bundle, patient in zip(list(bundles_from_export(SAMPLE))[1:], read_export(SAMPLE).patients, strict=True):
        stored = [fresh.get(e["request"]["url"]).json() for e in bundle["entry"]]
        assert patients.from_fhir(stored) == patient


def test_importing_again_updates_instead_of_duplicating(fresh: httpx.Client, tmp_path: Path) -> None:
    first = import_file(fresh, SAMPLE)
    assert {r["meta"]["versionId"] for r in first} == {"1"}
    changed = json.loads(SAMPLE.read_text())
    changed["patients"][0]["phone"] = "+351919999999"
    changed["patients"][0]["prescriptions"][0]["refills"] = 5
    path = tmp_path / "again.json"
    path.write_text(json.dumps(changed))
    second = import_file(fresh, path)
    assert [(r["resourceType"], r["id"]) for r in second] == [(r["resourceType"], r["id"]) for r in first]
    assert {r["meta"]["versionId"] for r in second} == {"2"}
    by_type = Counter(r["resourceType"] for r in first)
    for resource_type, count in by_type.items():
        history = fresh.get(f"{resource_type}/_history", params={"_count": "500"}).json()
        assert len({e["resource"]["id"] for e in history["entry"] if "resource" in e}) == count
    patient_id = next(r["id"] for r in first if r["resourceType"] == "Patient")
    patient = fresh.get(f"Patient/{patient_id}").json()
    assert {"system": "phone", "value": "+351919999999"} in patient["telecom"]
    request = next(r for r in second if r["resourceType"] == "MedicationRequest")
    assert fresh.get(f"MedicationRequest/{request['id']}").json()["dispenseRequest"]["numberOfRepeatsAllowed"] == 5
