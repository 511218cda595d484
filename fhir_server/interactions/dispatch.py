"""The single entry point for performing a FHIR interaction.

Routes the request, refuses what the type does not allow, runs writes in a transaction (unless
the caller, a transaction Bundle, already holds one), applies `Prefer: return=` to write results
and turns every failure into an OperationOutcome response: no exception escapes. Every
interaction is audited: writes record themselves in their own transaction (side writes), the
rest is recorded before the response is returned; an audit store that cannot be written turns
the response into a 503.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from fhir_server.audit.log import AuditUnavailable
from fhir_server.fhir.outcome import FhirError, information

# Importing the interaction modules registers their handlers.
from fhir_server.interactions import (  # noqa: F401
    bundle,
    capabilities,
    create,
    delete,
    history,
    hooks,
    operation,
    patch,
    read,
    search,
    update,
)
from fhir_server.interactions.model import UNRESTRICTED, Context, FhirRequest, FhirResponse, Json, Route, WriteTrail
from fhir_server.interactions.registry import HANDLERS, allowed
from fhir_server.interactions.routing import parse_route
from fhir_server.storage import UNAVAILABLE_ERRORS, Version
from fhir_server.storage.database import WriteConflict
from fhir_server.storage.repository import SideWrites, VersionMismatch

log = logging.getLogger(__name__)


async def perform(ctx: Context, req: FhirRequest) -> FhirResponse:
    """Perform `req`; failures come back as responses carrying an OperationOutcome."""
    try:
        route = parse_route(req.method, req.path)
    except FhirError as error:
        return await _audited(ctx, req, None, error_response(error), None)
    trail = ctx.auditor.trail(route) if ctx.auditor else None
    response = await _execute(replace(ctx, side_writes=_side_writes(ctx, trail)), req, route)
    return await _audited(ctx, req, route, response, trail)


def _side_writes(ctx: Context, trail: WriteTrail | None) -> SideWrites | None:
    """What happens with every version the interaction stores, in its transaction: the caller's
    access checks it (raising rolls the write back), then the audit trail records it."""
    if ctx.access is UNRESTRICTED:
        return trail

    def check_and_record(version: Version) -> list[tuple[str, Json]]:
        ctx.access.check_written(version)
        return trail(version) if trail else []

    return check_and_record


async def _execute(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    try:
        entry = HANDLERS.get(route.interaction)
        if entry is None:
            raise FhirError(501, "not-supported", f"The '{route.interaction}' interaction is not implemented")
        if route.type and not allowed(route.type, route.interaction):
            raise FhirError(405, "not-supported",
                            f"{route.type} resources are an immutable log written only by the server; "
                            "over the API they are read and searched")
        ctx.access.require(route.interaction, route.type)
        if entry.writes:
            hooks.before_write(route.type, req.body)
        if entry.transactional:
            response = await ctx.transaction(lambda tx: entry.handler(tx, req, route))
        else:
            response = await entry.handler(ctx, req, route)
        if not entry.writes:
            return response
        if response.status < 300:
            hooks.after_write(ctx.database, response.version)
        return _apply_prefer(req, response)
    except FhirError as error:
        return error_response(error)
    except VersionMismatch as mismatch:
        return error_response(FhirError(412, "conflict", f"Version conflict: {mismatch}"))
    except WriteConflict as conflict:
        return error_response(FhirError(409, "conflict", f"{conflict}; retry the request"))
    except UNAVAILABLE_ERRORS as unavailable:
        log.warning("database unavailable: %s", unavailable)
        return error_response(FhirError(503, "transient", "The database is unavailable; nothing was changed"))


async def _audited(ctx: Context, req: FhirRequest, route: Route | None, response: FhirResponse,
                   trail: WriteTrail | None) -> FhirResponse:
    """`response`, once the interaction is on the audit record (writes already are: side writes)."""
    if ctx.auditor is None:
        return response
    if trail is not None and trail.written and response.status < 400:
        ctx.auditor.written()
        return response
    try:
        touched = response.touched or ([response.version] if response.version else [])
        await ctx.auditor.record(req, route, response, touched)
    except AuditUnavailable as unavailable:
        log.error("audit store unavailable, refusing the response: %s", unavailable)
        return error_response(FhirError(503, "transient", "The audit log cannot be written; the request "
                                        "was refused so that it does not go unaudited"))
    return response


def error_response(error: FhirError) -> FhirResponse:
    return FhirResponse(error.status, error.outcome, dict(error.headers))


def _apply_prefer(req: FhirRequest, response: FhirResponse) -> FhirResponse:
    """`Prefer: return=minimal | representation | OperationOutcome` on a successful write."""
    preference = req.prefer("return")
    if response.status >= 300 or preference in (None, "representation"):
        return response
    if preference == "minimal":
        response.resource = None
    elif preference == "OperationOutcome":
        response.resource = information(f"{req.method} {req.path}: {response.status}")
        response.status = 200 if response.status == 204 else response.status
    return response
