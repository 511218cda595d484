"""Security events on the audit trail: logins, logouts and token events as BALP AuditEvents.

`AuditedSecurityEvents` is what the auth package's `security_events.emit(...)` reaches when
auditing is on. Refused FHIR requests (401/403, kind `access`) are not recorded here: the refused
interaction's own AuditEvent already records them, with outcome 4 and the reason.
"""

from __future__ import annotations

from typing import Any

from fhir_server.audit.log import AuditLog
from fhir_server.audit.record import MINOR_FAILURE, SUCCESS, Actor, AuditRecord
from fhir_server.fhir.primitives import now

# Security event kinds with their own AuditEvent subtype; token events are `token-<subtype>`.
_USER_AUTHENTICATION = ("login", "logout")


def actor_from(principal: Any, username: str | None = None) -> Actor | None:
    """The audit actor for an auth principal (fhirUser, login name, token id, client, roles)."""
    if principal is None:
        return Actor(identifier=username) if username else None
    return Actor(reference=getattr(principal, "fhir_user", None),
                 identifier=getattr(principal, "username", None) or getattr(principal, "sub", None),
                 token_id=getattr(principal, "jti", None), client_id=getattr(principal, "client_id", None),
                 roles=tuple(getattr(principal, "roles", ())))


class AuditedSecurityEvents:
    """Puts each security event on the audit trail, durably, before the auth endpoint answers."""

    def __init__(self, log: AuditLog, server_url: str = "") -> None:
        self.log = log
        self.server_url = server_url

    async def emit(self, kind: str, subtype: str, outcome_ok: bool, principal: Any, client_address: str | None,
                   detail: dict) -> None:
        if kind == "access":
            return
        actor = actor_from(principal, detail.get("username"))
        if actor is not None and actor.client_id is None and detail.get("client_id"):
            actor = Actor(actor.reference, actor.identifier, actor.display, actor.token_id,
                          str(detail["client_id"]), actor.roles)
        elif actor is None and detail.get("client_id"):
            actor = Actor(client_id=str(detail["client_id"]))
        reason = detail.get("description") or detail.get("error")
        await self.log.record([AuditRecord(
            kind=kind if kind in _USER_AUTHENTICATION else "token",
            subtype=kind if kind in _USER_AUTHENTICATION else f"token-{subtype}",
            action="E", recorded=now(), outcome=SUCCESS if outcome_ok else MINOR_FAILURE,
            outcome_text=None if outcome_ok else str(reason or subtype), actor=actor,
            client_address=client_address, server_url=self.server_url,
            extra={"event": subtype, **{k: str(v) for k, v in detail.items() if v is not None}})])
