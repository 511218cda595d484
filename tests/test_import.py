"""`fhir-server import`: Bundles, collections and NDJSON from folders, into the database or a server, re-runnable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.bundle_data import bundle, observation, urn
from tests.conftest import LiveServer
from tests.fhir_data import patient, unique


def run_import(server: LiveServer, *args: str) -> subprocess.CompletedProcess:
    """The CLI writing straight into the test server's database."""
    env = {**os.environ, "MONGODB_URI": server.settings.mongodb_uri, "FHIR_DATABASE": server.settings.database_name,
           "COLUMNS": "200"}
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


def test_unknown_source_format_is_refused(server: LiveServer, tmp_path: Path) -> None:
    result = run_import(server, str(tmp_path), "--from", "no-such-format")
    assert result.returncode == 2 and "invalid choice" in result.stderr
