"""What to record for a FHIR interaction: audit records from a request, its route and its outcome.

Successful writes are recorded as they are stored (a `WriteTrail` puts their records into the
audit outbox in the write's own transaction); everything else (reads, searches, refusals,
failures) through `records_for` once the response is known. `RequestAuditor` is what the HTTP
adapter hands to the interactions (`Context.auditor`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fhir_server.audit.collections import OUTBOX
from fhir_server.audit.log import AuditLog, record_document
from fhir_server.audit.record import Actor, AuditRecord, outcome_for_status
from fhir_server.fhir.primitives import new_id, now
from fhir_server.interactions.model import FhirRequest, FhirResponse, Route
from fhir_server.search.compartments import memberships
from fhir_server.search.extract import extract
from fhir_server.storage import Version

Json = dict[str, Any]

# BALP actions per interaction: C/R/U/D, E for searches, operations and Bundles.
ACTIONS = {"create": "C", "update": "U", "patch": "U", "delete": "D", "conditional-update": "U",
           "conditional-patch": "U", "conditional-delete": "D", "search-type": "E", "search-system": "E",
           "search-compartment": "E", "operation": "E", "batch": "E", "transaction": "E"}
_WRITE_ACTIONS = {"POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}


@dataclass(frozen=True)
class RequestFacts:
    """What the HTTP layer knows about a request: its id, the caller and the addresses."""

    request_id: str
    client_address: str | None
    server_url: str
    actor: Actor | None = None


@dataclass
class WriteTrail:
    """Side writes for one interaction: each stored version gets its record in the same transaction."""

    facts: RequestFacts
    interaction: str
    written: list[Version] = field(default_factory=list)

    def __call__(self, version: Version) -> list[tuple[str, Json]]:
        self.written.append(version)
        record = AuditRecord(
            kind="rest", subtype=self.interaction, action=_WRITE_ACTIONS[version.method], recorded=now(),
            actor=self.facts.actor, client_address=self.facts.client_address, server_url=self.facts.server_url,
            resources=(_reference(version),), patients=_patients(version.compartments),
            request_id=self.facts.request_id)
        return [(OUTBOX, record_document(record))]


def _reference(version: Version) -> str:
    return f"{version.type}/{version.id}/_history/{version.vid}"


def _patients(compartments: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(c for c in compartments if c.startswith("Patient/"))


def _version_patients(version: Version) -> tuple[str, ...]:
    """The patients whose data a version holds: from the store, or (history) from its content."""
    if version.compartments or version.resource is None:
        return _patients(version.compartments)
    index = extract(version.type, version.resource)
    return _patients(memberships(version.type, version.id, index))


def _outcome_text(response: FhirResponse) -> str | None:
    if response.status < 400 or not response.resource:
        return None
    return "; ".join(i.get("diagnostics", i.get("code", "")) for i in response.resource.get("issue", [])) or None


def records_for(facts: RequestFacts, req: FhirRequest, route: Route | None, response: FhirResponse,
                touched: list[Version]) -> list[AuditRecord]:
    """The record of an interaction that changed nothing: a read, search, refusal or failure."""
    interaction = route.interaction if route else "unknown"
    resources = tuple(_reference(v) for v in touched if v.resource is not None and route and
                      route.interaction in ("read", "vread"))
    if not resources and route and route.type and route.id:
        resources = (f"{route.type}/{route.id}",)
    patients: dict[str, None] = {}
    for version in touched:
        patients.update(dict.fromkeys(_version_patients(version)))
    query = "&".join(f"{k}={v}" for k, v in req.params) if interaction.startswith(("search", "history")) or (
        interaction.startswith("conditional")) else None
    return [AuditRecord(
        kind="rest", subtype=interaction, action=ACTIONS.get(interaction, _WRITE_ACTIONS.get(req.method, "R")),
        recorded=now(), outcome=outcome_for_status(response.status), outcome_text=_outcome_text(response),
        actor=facts.actor, client_address=facts.client_address, server_url=facts.server_url,
        resources=resources, query=query, patients=tuple(patients), request_id=facts.request_id)]


def system_trail(job: str, interaction: str) -> WriteTrail:
    """Side writes recording the versions a server job stores on its own (no request, no user):
    the actor is the job, named as `system:<job>`."""
    return WriteTrail(RequestFacts(new_id(), None, "", Actor(identifier=f"system:{job}")), interaction)


class RequestAuditor:
    """The auditing of one HTTP request: every interaction it performs, Bundle entries included."""

    def __init__(self, log: AuditLog, facts: RequestFacts) -> None:
        self.log = log
        self.facts = facts

    def identify(self, actor: Actor | None) -> None:
        """Name the caller once the bearer token is verified (refusals before that stay anonymous)."""
        self.facts = replace(self.facts, actor=actor)

    def trail(self, route: Route) -> WriteTrail:
        return WriteTrail(self.facts, route.interaction)

    async def record(self, req: FhirRequest, route: Route | None, response: FhirResponse,
                     touched: list[Version]) -> None:
        await self.log.record(records_for(self.facts, req, route, response, touched))

    def written(self) -> None:
        self.log.nudge()
