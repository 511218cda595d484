"""Security events (logins, tokens, refusals) handed to whoever records them.

The server calls `app.state.security_events.emit(...)`; it defaults to `NoSecurityEvents`, and the
audit package replaces it to put each event on the audit trail.

Kinds and subtypes emitted:
- `login`: `success`, `failure`, `locked`;
- `logout` (token revocation by the user's app): `success`;
- `token`: `issued`, `refreshed`, `revoked`, `refused` (a grant the token endpoint turned down);
- `access`: `unauthenticated` (401 on the FHIR API), `forbidden` (403).
"""

from __future__ import annotations

from typing import Any, Protocol


class SecurityEvents(Protocol):
    async def emit(self, kind: str, subtype: str, outcome_ok: bool, principal: Any, client_address: str | None,
                   detail: dict) -> None:
        """Record one security event; `principal` is an `access.Principal` or None (unknown caller)."""
        ...


class NoSecurityEvents:
    """The default: events go nowhere."""

    async def emit(self, kind: str, subtype: str, outcome_ok: bool, principal: Any, client_address: str | None,
                   detail: dict) -> None:
        return None
