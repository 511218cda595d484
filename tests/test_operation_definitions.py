"""The OperationDefinitions of our operations: shipped for every operation that is not HL7's, in
agreement with how the operation is registered, served at `/OperationDefinition`, and named by
canonical URL in the CapabilityStatement."""

from __future__ import annotations

import httpx

import profiles
from fhir_server.definitions import operation_definitions as hl7_operation_definitions
from fhir_server.operations import load_operations
from fhir_server.operations.registry import OPERATIONS, Operation

HL7 = "http://hl7.org/fhir/OperationDefinition/"
OURS = f"{profiles.BASE}/OperationDefinition/"
CUSTOM = {"dispense": "MedicationRequest-dispense", "verify-chain": "AuditEvent-verify-chain",
          "export": "AuditEvent-export", "reindex": "reindex"}


def registered() -> list[Operation]:
    load_operations()
    return [op for ops in OPERATIONS.values() for op in ops]


def test_every_operation_has_a_definition_we_ship_or_hl7_publishes() -> None:
    hl7 = {od["url"] for od in hl7_operation_definitions().values()}
    shipped = profiles.operation_definitions()
    for op in registered():
        assert op.definition in shipped or op.definition in hl7, f"${op.name}: {op.definition} resolves nowhere"
        assert op.definition.startswith(HL7) == (op.name not in CUSTOM), op.name
    assert {op.name: op.definition for op in registered() if op.name in CUSTOM} == {
        name: OURS + id_ for name, id_ in CUSTOM.items()}


def test_shipped_definitions_agree_with_the_registered_operations() -> None:
    by_url = {op.definition: op for op in registered()}
    shipped = profiles.operation_definitions()
    assert set(shipped) <= set(by_url), "an OperationDefinition for no operation"
    for url, definition in shipped.items():
        op = by_url[url]
        assert definition["id"] == url.removeprefix(OURS)
        assert definition["code"] == op.name
        assert definition["kind"] == "operation" and definition["status"] == "active"
        assert {level for level in ("system", "type", "instance") if definition[level]} == op.levels
        assert definition["resource"] == (sorted(op.types) if op.types is not None else ["Resource"])
        assert definition["affectsState"] == op.affects_state


def capability_definitions(statement: dict) -> set[str]:
    rest = statement["rest"][0]
    entries = [*rest.get("operation", []), *(o for r in rest["resource"] for o in r.get("operation", []))]
    return {entry["definition"] for entry in entries}


def test_every_definition_in_the_capability_statement_resolves(client: httpx.Client) -> None:
    definitions = capability_definitions(client.get("metadata").json())
    ours = {url for url in definitions if url.startswith(OURS)}
    assert ours == {OURS + id_ for id_ in CUSTOM.values()}
    hl7 = {od["url"] for od in hl7_operation_definitions().values()}
    assert definitions - ours <= hl7
    for url in sorted(ours):
        found = client.get("OperationDefinition", params={"url": url})
        assert found.status_code == 200, found.text
        entries = found.json().get("entry", [])
        assert [e["resource"]["url"] for e in entries] == [url]
        by_id = client.get(f"OperationDefinition/{url.removeprefix(OURS)}")
        assert by_id.status_code == 200, by_id.text
        served = by_id.json()
        assert served["url"] == url and served == entries[0]["resource"]
        assert {k: v for k, v in served.items() if k != "meta"} == profiles.operation_definitions()[url]


def test_dispense_definition_is_listed_under_medication_request_and_served(client: httpx.Client) -> None:
    statement = client.get("metadata").json()
    resource = next(r for r in statement["rest"][0]["resource"] if r["type"] == "MedicationRequest")
    definition = next(o["definition"] for o in resource["operation"] if o["name"] == "dispense")
    served = client.get("OperationDefinition/MedicationRequest-dispense").json()
    assert served["url"] == definition
    assert served["code"] == "dispense" and served["resource"] == ["MedicationRequest"] and served["instance"]


def test_the_implementation_guide_lists_the_operation_definitions(client: httpx.Client) -> None:
    guide = client.get("ImplementationGuide/medicalcycle").json()
    listed = {r["reference"]["reference"] for r in guide["definition"]["resource"]}
    assert {f"OperationDefinition/{id_}" for id_ in CUSTOM.values()} <= listed
    for reference in sorted(listed):
        assert client.get(reference).status_code == 200, reference
