"""Start-up index reconciliation: the server creates the indexes it wants and drops the ones it
managed once but no longer wants, leaving operators' own indexes alone."""

from __future__ import annotations

import uuid

from pymongo import MongoClient

from fhir_server.config import Settings
from fhir_server.search.indexes import index_specs
from tests.conftest import start_live_server


def test_start_up_drops_retired_indexes_and_keeps_the_operators(mongodb_uri: str, mongo: MongoClient) -> None:
    name = f"fhir_test_{uuid.uuid4().hex[:10]}"
    observations = mongo[name]["Observation"]
    # What an earlier version created (a status index), and an index an operator added.
    observations.create_index("sp.status.t", name="sp_status")
    observations.create_index("res.status", name="by_status_for_reports")
    observations.create_index([("sp.patient.r", 1), ("sp.date.s", 1)], name="patient_date")

    server = start_live_server(Settings(mongodb_uri=mongodb_uri, database_name=name, auth_enabled=False))
    try:
        present = set(observations.index_information())
    finally:
        server.stop()
        mongo.drop_database(name)

    wanted = {model.document["name"] for model in index_specs("Observation")}
    assert wanted <= present
    assert "by_status_for_reports" in present
    assert not {"sp_status", "patient_date"} & present


def test_low_cardinality_parameters_get_no_index() -> None:
    names = {model.document["name"] for model in index_specs("Observation")}
    assert {"sp_code", "sp_subject", "patient_code_date"} <= names
    assert not {"sp_status", "sp_category", "patient_date"} & names
    # Without a code the (patient, date) compound stays the patient index.
    assert "patient_date" in {model.document["name"] for model in index_specs("Encounter")}
