"""The table of implemented interactions: code -> handler, filled by each interaction module.

The CapabilityStatement is generated from this table, so it lists exactly what is implemented.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Route

Handler = Callable[[Context, FhirRequest, Route], Awaitable[FhirResponse]]

# Resource types only the server writes, as an immutable log; over REST they are read and searched.
SERVER_WRITTEN_TYPES = frozenset({"AuditEvent"})
_LOG_INTERACTIONS = frozenset({"read", "vread", "search-type", "search-compartment", "search-system", "operation"})


@dataclass(frozen=True)
class Interaction:
    code: str
    handler: Handler
    writes: bool
    """Changes data: `Prefer: return=` applies, server-written types refuse it."""
    transactional: bool
    """The dispatcher runs it in a transaction (else the handler manages its own)."""


HANDLERS: dict[str, Interaction] = {}


def interaction(*codes: str, writes: bool = False, transactional: bool | None = None
                ) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of the interaction `codes`.

    Writes are transactional unless they say otherwise.
    """

    def register(handler: Handler) -> Handler:
        for code in codes:
            HANDLERS[code] = Interaction(code, handler, writes, writes if transactional is None else transactional)
        return handler

    return register


def allowed(resource_type: str, code: str) -> bool:
    """Whether `code` may be performed on `resource_type` over the API."""
    if resource_type in SERVER_WRITTEN_TYPES and code not in _LOG_INTERACTIONS:
        return False
    return code in HANDLERS
