"""The facts of one audited event, independent of how they are written down as an AuditEvent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# AuditEvent.outcome codes (http://hl7.org/fhir/audit-event-outcome).
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE, MAJOR_FAILURE = "0", "4", "8", "12"


def outcome_for_status(status: int) -> str:
    """The AuditEvent outcome for an HTTP status: 4xx is a minor failure, 5xx a serious one."""
    if status < 400:
        return SUCCESS
    return MINOR_FAILURE if status < 500 else SERIOUS_FAILURE


@dataclass(frozen=True)
class Actor:
    """Who acted: the user (or backend client) behind the request, as the token tells it."""

    reference: str | None = None
    """`fhirUser` as a relative reference, e.g. `Practitioner/123`."""
    identifier: str | None = None
    """The login name or `sub` when there is no FHIR identity."""
    display: str | None = None
    token_id: str | None = None
    """The access token's `jti` (BALP puts it in agent.policy)."""
    client_id: str | None = None
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditRecord:
    """One audited event. `patients` lists every patient whose data it touched (one AuditEvent each)."""

    kind: str
    """`rest` for FHIR interactions, or a security event: `login`, `logout`, `token`."""
    subtype: str
    """The restful interaction (`read`, `search-type`...) or the security event's code."""
    action: str
    """C, R, U, D or E."""
    recorded: datetime
    outcome: str = SUCCESS
    outcome_text: str | None = None
    actor: Actor | None = None
    client_address: str | None = None
    server_url: str = ""
    resources: tuple[str, ...] = ()
    """References to what was touched: `Patient/1/_history/2`, `Observation/9`..."""
    query: str | None = None
    """For searches and conditional interactions: the query string as received."""
    patients: tuple[str, ...] = ()
    request_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    """Event-specific facts for security events (e.g. `reason`, `grant_type`)."""
