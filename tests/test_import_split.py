"""`fhir-server import` loads a transaction over FHIR_MAX_TRANSACTION_BYTES as several transactions,
with the references between them rewritten to `Type/id`; one it cannot split keeps its 413."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.bundle_data import CORE, LOINC, bundle, observation, quantity, urn, vital_sign
from tests.conftest import LiveServer
from tests.fhir_data import patient, unique
from tests.test_import import run_import

# Small enough that the Bundles below, 10 to 15 KB of resources, need at least three transactions.
LIMIT = 4000
OBSERVATIONS = 24


@pytest.fixture(scope="module")
def small(make_server: Callable[..., LiveServer]) -> LiveServer:
    """A server committing at most LIMIT bytes of resources in one transaction."""
    return make_server(max_transaction_bytes=LIMIT)


@pytest.fixture
def small_client(small: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=small.url, auth=small.auth, timeout=60) as http:
        yield http


def import_into(server: LiveServer, path: Path, *args: str, over_http: bool = False) -> subprocess.CompletedProcess:
    """The CLI loading `path` into `server` (its database, or over HTTP) with the importer's limit LIMIT."""
    target = ("--url", server.url, "--token", server.auth.current()) if over_http else ()
    return run_import(server, str(path), *target, *args, FHIR_MAX_TRANSACTION_BYTES=str(LIMIT))


def put_entry(resource: dict) -> dict:
    """A create of a resource with an id, as Synthea writes it: the importer makes it `PUT Type/id`."""
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]}}


def patient_record(ids: dict) -> dict:
    """A patient transaction whose entries reference each other by urn:uuid everywhere: subject and
    encounter, a contained resource's extension, a list of results, and one conditional reference."""
    subject = f"urn:uuid:{ids['patient']}"
    person = patient(id=ids["patient"], identifier=[{"system": "urn:test:mrn", "value": ids["mrn"]}])
    encounter = {"resourceType": "Encounter", "id": ids["encounter"], "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "subject": {"reference": subject}}
    observations = [observation(subject, id=i, encounter={"reference": f"urn:uuid:{ids['encounter']}"},
                                note=[{"text": "x" * 200}]) for i in ids["observations"]]
    observations[0]["contained"] = [{"resourceType": "Practitioner", "id": "seen-by", "extension": [
        {"url": "http://example.org/fhir/StructureDefinition/on-behalf-of", "valueReference": {"reference": subject}}]}]
    observations[0]["performer"] = [{"reference": "#seen-by"}]
    # Left to the server, which resolves it in its own transaction: the Patient is committed by then.
    observations[-1]["performer"] = [{"reference": f"Patient?identifier=urn:test:mrn|{ids['mrn']}"}]
    report = {"resourceType": "DiagnosticReport", "id": ids["report"], "status": "final",
              "code": {"coding": [{"system": LOINC, "code": "85353-1"}]}, "subject": {"reference": subject},
              "result": [{"reference": f"urn:uuid:{i}"} for i in ids["observations"]]}
    return bundle("transaction", *(put_entry(r) for r in (person, encounter, *observations, report)))


def record_ids() -> dict:
    return {"patient": unique("split"), "mrn": unique("mrn"), "encounter": unique("split"),
            "report": unique("split"), "observations": [unique("split") for _ in range(OBSERVATIONS)]}


def table_row(stderr: str, name: str) -> dict[str, str]:
    """The report table's row for the file `name`, by column header."""
    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]

    lines = stderr.splitlines()
    header = next(line for line in lines if line.startswith("┃"))
    row = next(line for line in lines if name in line and "│" in line)
    return dict(zip(cells(header), cells(row), strict=True))


def messages(result: subprocess.CompletedProcess) -> str:
    """The command's stderr on one line: rich wraps long messages."""
    return " ".join(result.stderr.split())


@pytest.mark.parametrize("over_http", [False, True], ids=["database", "http"])
def test_an_oversized_transaction_is_loaded_in_several_with_references_rewritten(
        tmp_path: Path, small: LiveServer, small_client: httpx.Client, over_http: bool) -> None:
    ids = record_ids()
    record = patient_record(ids)
    # A conditional update at the end whose search names the Patient entry by its fullUrl, as the
    # server lets a transaction do: rewritten too, else each run of the import would create it again.
    tag = f"urn:test:obs|{ids['mrn']}"
    record["entry"].append({"fullUrl": urn(), "resource": observation(f"urn:uuid:{ids['patient']}", identifier=[
        {"system": "urn:test:obs", "value": ids["mrn"]}]), "request": {
        "method": "PUT", "url": f"Observation?identifier={tag}&patient=urn:uuid:{ids['patient']}"}})
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    patient_ref, encounter_ref = f"Patient/{ids['patient']}", f"Encounter/{ids['encounter']}"

    result = import_into(small, path, over_http=over_http)
    assert result.returncode == 0, result.stderr
    row = table_row(result.stderr, "record.json")
    assert row["bundles"] == "1" and int(row["transactions"]) >= 3 and row["errors"] == "0"
    assert row["resources"] == str(OBSERVATIONS + 4)

    first = small_client.get(f"/Observation/{ids['observations'][0]}").json()
    assert first["subject"]["reference"] == patient_ref and first["encounter"]["reference"] == encounter_ref
    assert first["contained"][0]["extension"][0]["valueReference"]["reference"] == patient_ref
    assert small_client.get(f"/Observation/{ids['observations'][-1]}").json()["performer"][0]["reference"] == \
        patient_ref
    report = small_client.get(f"/DiagnosticReport/{ids['report']}").json()
    assert [r["reference"] for r in report["result"]] == [f"Observation/{i}" for i in ids["observations"]]
    assert small_client.get(f"/Encounter/{ids['encounter']}").json()["subject"]["reference"] == patient_ref
    found = small_client.get(f"/Observation?patient={patient_ref}&encounter={encounter_ref}&_count=100").json()
    assert sorted(e["resource"]["id"] for e in found["entry"]) == sorted(ids["observations"])
    last = ids["observations"][-1]
    assert small_client.get(f"/DiagnosticReport?result=Observation/{last}").json()["entry"][0]["resource"]["id"] == \
        ids["report"]

    again = import_into(small, path, over_http=over_http)
    assert again.returncode == 0, again.stderr
    # PUT by id: one resource per id, a second version of each; the conditional update found its match.
    assert small_client.get(f"/Observation?patient={patient_ref}&_summary=count").json()["total"] == \
        OBSERVATIONS + 1
    tagged = small_client.get(f"/Observation?identifier={tag}").json()["entry"]
    assert len(tagged) == 1 and tagged[0]["resource"]["meta"]["versionId"] == "2"
    assert tagged[0]["resource"]["subject"]["reference"] == patient_ref
    assert small_client.get(f"/DiagnosticReport/{ids['report']}").json()["meta"]["versionId"] == "2"
    assert len(small_client.get(f"/Observation/{last}/_history").json()["entry"]) == 2


def created_without_id(record: dict) -> str:
    """The Patient created with an id the server chooses: `POST Patient` without id."""
    del record["entry"][0]["resource"]["id"]
    return "POST Patient"


def created_if_none_exist(record: dict) -> str:
    """A conditional create: the server chooses between an existing Patient and a new one."""
    record["entry"][0]["request"]["ifNoneExist"] = "identifier=urn:test:mrn|x"
    return "POST Patient ifNoneExist identifier=urn:test:mrn|x"


@pytest.mark.parametrize("unfix", [created_without_id, created_if_none_exist])
def test_a_transaction_referencing_an_entry_without_fixed_id_keeps_its_413(
        tmp_path: Path, small: LiveServer, small_client: httpx.Client, unfix: Callable[[dict], str]) -> None:
    ids = record_ids()
    record = patient_record(ids)
    request = unfix(record)
    (tmp_path / "record.json").write_text(json.dumps(record))
    result = import_into(small, tmp_path)
    assert result.returncode == 1
    errors = messages(result)
    assert "HTTP 413" in errors and "FHIR_MAX_TRANSACTION_BYTES" in errors
    assert "not split into smaller transactions: entry[1] references entry[0] " \
           f"(urn:uuid:{ids['patient']}), whose id the server chooses ({request}); only PUT Type/id entries can " \
           "be referenced across transactions" in errors
    assert small_client.get(f"/Encounter/{ids['encounter']}").status_code == 404


def test_an_entry_over_the_limit_alone_is_not_split(tmp_path: Path, small: LiveServer,
                                                    small_client: httpx.Client) -> None:
    ids = record_ids()
    record = patient_record(ids)
    record["entry"][2]["resource"]["note"] = [{"text": "x" * LIMIT}]
    (tmp_path / "record.json").write_text(json.dumps(record))
    result = import_into(small, tmp_path)
    assert result.returncode == 1
    assert re.search(r"HTTP 413: .*not split into smaller transactions: entry\[2\] alone takes \d+ bytes",
                     messages(result))
    assert small_client.get(f"/Patient/{ids['patient']}").status_code == 404


@pytest.mark.parametrize("creates", [0, 2])
def test_a_failing_transaction_names_what_was_committed(tmp_path: Path, small: LiveServer,
                                                        small_client: httpx.Client, creates: int) -> None:
    """The runs before the failed one stay committed, those after it are not sent; the message says
    whether re-running is safe: not quite when unreferenced resources without id were created."""
    ids = record_ids()
    record = patient_record(ids)
    marker = unique("noid")
    record["entry"][1:1] = [{"resource": observation(f"urn:uuid:{ids['patient']}", identifier=[
        {"system": "urn:test:noid", "value": marker}]), "request": {"method": "POST", "url": "Observation"}}
        for _ in range(creates)]
    bad = creates + 2 + OBSERVATIONS // 2  # an Observation half way: in neither the first nor the last run
    record["entry"][bad]["resource"]["effectiveDateTime"] = "yesterday"
    (tmp_path / "record.json").write_text(json.dumps(record))
    result = import_into(small, tmp_path)
    assert result.returncode == 1
    errors = messages(result)
    rerun = f"creates its {creates} committed entries without id again" if creates else "is safe \\(PUT by id\\)"
    failed = re.search(r"split into (\d+) transactions \(over FHIR_MAX_TRANSACTION_BYTES, 4000 bytes\): "
                       r"transaction (\d+) \(entries (\d+)-(\d+)\) failed, transactions? ([-\d]+) committed "
                       rf"\((\d+) resources\)(, transactions? ([-\d]+) not sent)?, re-running the import {rerun}: "
                       r"HTTP 400: ", errors)
    assert failed, result.stderr
    count, number, start, end = map(int, failed.group(1, 2, 3, 4))
    assert 1 < number <= count and start <= bad <= end and int(failed[6]) == start
    assert failed[5] == ("1" if number == 2 else f"1-{number - 1}")
    assert failed[8] == (str(count) if number + 1 == count else f"{number + 1}-{count}")
    # The failed entry is named by its index in the Bundle as read, not in its transaction.
    failing = ids["observations"][bad - creates - 2]
    assert f"Bundle.entry[{bad}] (PUT Observation/{failing})" in errors
    assert small_client.get(f"/Patient/{ids['patient']}").status_code == 200
    assert small_client.get(f"/Observation?identifier=urn:test:noid|{marker}&_summary=count").json()["total"] == \
        creates
    assert small_client.get(f"/Observation/{ids['observations'][0]}").status_code == 200
    assert small_client.get(f"/Observation/{failing}").status_code == 404
    assert small_client.get(f"/Observation/{ids['observations'][-1]}").status_code == 404
    assert small_client.get(f"/DiagnosticReport/{ids['report']}").status_code == 404


def test_skip_invalid_leaves_out_dependents_in_other_transactions(tmp_path: Path, small: LiveServer,
                                                                   small_client: httpx.Client) -> None:
    """A value-less vital sign (vs-2) in the middle of a split Bundle is left out, and so is the
    DiagnosticReport citing it, at the end of the Bundle in another transaction."""
    ids = record_ids()
    record = patient_record(ids)
    middle = OBSERVATIONS // 2
    percentile = vital_sign(f"urn:uuid:{ids['patient']}", "77606-2", "Weight-for-length Per age and sex",
                            id=ids["observations"][middle])
    weight = vital_sign(f"urn:uuid:{ids['patient']}", "29463-7", "Body Weight", CORE + "bodyweight",
                        id=ids["observations"][middle + 1], valueQuantity=quantity(4.7, "kg"))
    record["entry"][2 + middle]["resource"] = percentile
    record["entry"][3 + middle]["resource"] = weight
    (tmp_path / "record.json").write_text(json.dumps(record))
    result = import_into(small, tmp_path, "--skip-invalid")
    assert result.returncode == 0, result.stderr
    skips = messages(result)
    assert f"skipped entry[{2 + middle}] Observation/{ids['observations'][middle]}: vs-2" in skips
    assert f"skipped entry[{len(record['entry']) - 1}] DiagnosticReport/{ids['report']}: references a skipped " \
           f"entry (urn:uuid:{ids['observations'][middle]})" in skips
    row = table_row(result.stderr, "record.json")
    assert int(row["transactions"]) >= 3 and row["skipped"] == "2" and row["resources"] == str(OBSERVATIONS + 1)
    assert small_client.get(f"/DiagnosticReport/{ids['report']}").status_code == 404
    assert small_client.get(f"/Observation/{ids['observations'][middle]}").status_code == 404
    assert small_client.get(f"/Observation/{ids['observations'][middle + 1]}").json()["subject"]["reference"] == \
        f"Patient/{ids['patient']}"
