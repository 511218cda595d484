"""The auditors' operations on AuditEvent: `$verify-chain` and the `$export` NDJSON download.

Both are type-level operations on AuditEvent and need the right to search AuditEvents (the
`auditor` role). `$export` answers synchronously with the NDJSON itself rather than the Bulk Data
kick-off/poll exchange: an audit period is a bounded, already ordered stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fhir_server.audit.collections import RESOURCE_TYPE
from fhir_server.audit.export import events_between, ndjson_line
from fhir_server.audit.verify import verify_chain
from fhir_server.fhir.outcome import Issue, bad_request, operation_outcome
from fhir_server.fhir.primitives import date_time_range
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Route
from fhir_server.operations.parameters import operation_parameters
from fhir_server.operations.registry import operation

NDJSON = "application/fhir+ndjson"
DEFINITIONS = "https://medicalcycle.example/fhir/OperationDefinition"


def _period(req: FhirRequest) -> tuple[datetime | None, datetime | None]:
    """The `_since` / `_until` parameters as the start and end of their FHIR date ranges."""
    bounds: dict[str, datetime | None] = {"_since": None, "_until": None}
    for name, value in operation_parameters(req):
        if name not in bounds:
            raise bad_request(f"Unknown parameter '{name}': this operation takes _since and _until", name)
        period = date_time_range(value) if isinstance(value, str) else None
        if period is None:
            raise bad_request(f"Parameter '{name}' must be a FHIR date, dateTime or instant", name)
        bounds[name] = period[0] if name == "_since" else period[1]
    return bounds["_since"], bounds["_until"]


@operation("verify-chain", levels={"type"}, types={RESOURCE_TYPE},
           definition=f"{DEFINITIONS}/AuditEvent-verify-chain")
async def verify(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    """Walk the hash chain (or the part recorded in [_since, _until]); report the first broken link."""
    ctx.access.require("search-type", RESOURCE_TYPE)
    since, until = _period(req)
    result = await verify_chain(ctx.database, since, until)
    span = f"#{result.first}..#{result.last}" if result.first else "no events"
    if result.intact:
        issue = Issue("information", "informational", f"Audit chain intact: {result.checked} events checked ({span})")
    else:
        issue = Issue("error", "processing",
                      f"Audit chain broken: {result.problem} (after {result.checked} intact events, {span})")
    return FhirResponse(200, operation_outcome([issue]))


@operation("export", levels={"type"}, types={RESOURCE_TYPE}, definition=f"{DEFINITIONS}/AuditEvent-export")
async def export(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    """The chained AuditEvents recorded in [_since, _until] as NDJSON, in chain order."""
    ctx.access.require("search-type", RESOURCE_TYPE)
    since, until = _period(req)
    return FhirResponse(200, stream=_ndjson(events_between(ctx.database, since, until)), media_type=NDJSON)


async def _ndjson(events: AsyncIterator[tuple[int, dict[str, Any]]]) -> AsyncIterator[bytes]:
    async for _, event in events:
        yield ndjson_line(event)
