"""`POST MedicationRequest/[id]/$dispense`: record a MedicationDispense and update the request, atomically.

In one transaction: read the request, count its dispenses, refuse (422) what `rules` forbids,
create the MedicationDispense and store a new version of the request (status `completed` after
the last allowed dispense). Every dispense writes the request, so two dispenses racing for the
last refill conflict on its version: the transaction of the loser is retried, sees the other's
dispense and is refused. A client's `If-Match` names the version it expects (else 412).
"""

from __future__ import annotations

from typing import Any

from fhir_server.fhir.outcome import bad_request, not_found, unprocessable
from fhir_server.fhir.primitives import date_time_range, format_instant, now
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.responses import check_valid, parse_version_tag
from fhir_server.operations.access import visible
from fhir_server.operations.parameters import operation_parameters
from fhir_server.operations.registry import operation
from fhir_server.prescriptions import rules
from fhir_server.search.plan import compile_query
from fhir_server.search.query import parse_query
from fhir_server.search.runner import Runner

DEFINITION = "https://medicalcycle.example/fhir/OperationDefinition/MedicationRequest-dispense"
# The parameters of the OperationDefinition: name -> the Parameters value key it takes.
PARAMETERS = {"quantity": "Quantity", "daysSupply": "Quantity", "performer": "Reference", "whenHandedOver": "dateTime"}


@operation("dispense", levels={"instance"}, types={"MedicationRequest"}, affects_state=True, definition=DEFINITION)
async def dispense(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    ctx.access.require("update", "MedicationRequest")
    ctx.access.require("create", "MedicationDispense")
    given = _parameters(req)
    if_match = req.headers.get("if-match")
    expected = parse_version_tag(if_match, "If-Match") if if_match else None
    return await ctx.transaction(lambda tx: _dispense(tx, route.id, given, expected))


async def _dispense(ctx: Context, request_id: str, given: Json, expected: int | None) -> FhirResponse:
    reference = f"MedicationRequest/{request_id}"
    found = await ctx.store.find("MedicationRequest", visible(ctx, "MedicationRequest", {"_id": request_id}), 1,
                                 ctx.session)
    if not found:
        raise not_found(f"{reference} is not known")
    current = found[0]
    request = current.resource
    dispensed = await _dispensed(ctx, reference)
    at = now()
    refused = rules.refusal(request, dispensed, at)
    if refused:
        raise unprocessable(*refused, code="business-rule")
    record = _dispense_record(request, reference, given, at)
    check_valid(record, 422)
    created = await ctx.store.create(ctx.session, "MedicationDispense", record, ctx.side_writes)
    updated = dict(request)
    if dispensed + 1 == rules.allowed_dispenses(request):
        updated["status"] = "completed"
    version, _ = await ctx.store.update(ctx.session, "MedicationRequest", request_id, updated,
                                        if_match=expected if expected is not None else current.vid,
                                        side=ctx.side_writes)
    return FhirResponse(200, {"resourceType": "Parameters", "parameter": [
        {"name": "dispense", "resource": created.resource}, {"name": "prescription", "resource": version.resource}]},
        {"ETag": f'W/"{version.vid}"'}, version, touched=[created, version])


async def _dispensed(ctx: Context, reference: str) -> int:
    """How many dispenses of the request use up refills: all of them, whatever the caller may see."""
    query = parse_query("MedicationDispense", [("prescription", reference)], strict=True)
    by_prescription = await Runner(ctx.database, None, ctx.session).filter(compile_query(query))
    return await ctx.store.count("MedicationDispense", {
        "$and": [by_prescription, {"res.status": {"$nin": list(rules.NOT_DISPENSED)}}]}, ctx.session)


def _parameters(req: FhirRequest) -> Json:
    """The given parameters by name; 400 for unknown, repeated or mistyped ones."""
    given: Json = {}
    for name, value in operation_parameters(req):
        if name not in PARAMETERS:
            raise bad_request(f"Unknown parameter '{name}': $dispense takes {', '.join(PARAMETERS)}", name)
        if name in given:
            raise bad_request(f"Parameter '{name}' is given twice", name)
        given[name] = _checked(name, value)
    return given


def _checked(name: str, value: Any) -> Any:
    kind = PARAMETERS[name]
    if kind == "dateTime":
        if not isinstance(value, str) or date_time_range(value) is None:
            raise bad_request(f"Parameter '{name}' must be a FHIR dateTime (valueDateTime)", name)
        return value
    if not isinstance(value, dict):
        raise bad_request(f"Parameter '{name}' must be a {kind} (value{kind})", name)
    if kind == "Quantity" and not isinstance(value.get("value"), int | float):
        raise bad_request(f"Parameter '{name}' needs a numeric value", name)
    return value


def _dispense_record(request: Json, reference: str, given: Json, at: Any) -> Json:
    """The MedicationDispense of one dispense of `request`."""
    record: Json = {"resourceType": "MedicationDispense", "status": "completed"}
    medication = (request.get("medicationReference") or {}).get("reference")
    if isinstance(medication, str) and medication.startswith("#"):
        # A contained Medication travels with the reference to it.
        record["contained"] = [r for r in request.get("contained", ()) if r.get("id") == medication[1:]]
    for key in ("medicationCodeableConcept", "medicationReference", "subject"):
        if key in request:
            record[key] = request[key]
    if "performer" in given:
        record["performer"] = [{"actor": given["performer"]}]
    record["authorizingPrescription"] = [{"reference": reference}]
    quantity = given.get("quantity") or (request.get("dispenseRequest") or {}).get("quantity")
    if quantity:
        record["quantity"] = quantity
    if "daysSupply" in given:
        record["daysSupply"] = given["daysSupply"]
    record["whenHandedOver"] = given.get("whenHandedOver") or format_instant(at)
    if "dosageInstruction" in request:
        record["dosageInstruction"] = request["dosageInstruction"]
    return record

