"""When a MedicationRequest may be dispensed: active, within its validity period, refills left.

`dispenseRequest.numberOfRepeatsAllowed` counts refills, so a request allows 1 + refills
dispenses (absent: no refills). Dispenses count unless they were cancelled, declined or entered
in error. A validity period ending on a date (`2027-05-02`) covers that whole day (UTC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_server.fhir.primitives import date_time_range

Json = dict[str, Any]

NOT_DISPENSED = ("entered-in-error", "cancelled", "declined")
"""MedicationDispense statuses that do not use up a refill."""


def allowed_dispenses(request: Json) -> int:
    return 1 + int((request.get("dispenseRequest") or {}).get("numberOfRepeatsAllowed") or 0)


def validity_end(request: Json) -> datetime | None:
    """The instant the request's validity period ends (exclusive); None when it has no end."""
    end = (((request.get("dispenseRequest") or {}).get("validityPeriod")) or {}).get("end")
    covered = date_time_range(end) if isinstance(end, str) else None
    return covered[1] if covered else None


def expired(request: Json, at: datetime) -> bool:
    end = validity_end(request)
    return end is not None and at >= end


def refusal(request: Json, dispensed: int, at: datetime) -> tuple[str, str] | None:
    """Why `request` may not be dispensed again after `dispensed` dispenses: (diagnostics, expression)."""
    if request.get("status") != "active":
        return f"The prescription is {request.get('status')}, not active", "MedicationRequest.status"
    if expired(request, at):
        return ("The prescription expired: its validity period ended "
                f"{request['dispenseRequest']['validityPeriod']['end']}",
                "MedicationRequest.dispenseRequest.validityPeriod.end")
    allowed = allowed_dispenses(request)
    if dispensed >= allowed:
        return (f"No refills left: {dispensed} of {allowed} allowed dispenses made",
                "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed")
    return None
