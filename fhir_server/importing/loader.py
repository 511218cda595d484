"""Writing imported Bundles: straight into the database through the interaction code, or to a server.

Every Bundle has been made idempotent (`sources.idempotent`) and is performed as a POST to the base:
- `DatabaseTarget` builds the same `Context` a request gets (unrestricted access, audited as the
  operator) and calls `dispatch.perform`: validation, reference resolution, search indexing and
  transactions are exactly those of the REST API;
- `HttpTarget` posts it to a running server (`--url`, with `--token` as a Bearer token).
"""

from __future__ import annotations

import asyncio
import getpass
import http.client
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from fhir_server.audit.capture import RequestAuditor, RequestFacts
from fhir_server.audit.log import AuditLog
from fhir_server.audit.record import Actor
from fhir_server.config import Settings
from fhir_server.definitions import resource_types
from fhir_server.fhir import json as fhir_json
from fhir_server.fhir.primitives import new_id
from fhir_server.interactions.dispatch import perform
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse
from fhir_server.interactions.search_parameters import follower
from fhir_server.search import compartments
from fhir_server.search.extract import extract
from fhir_server.search.indexes import index_specs, is_managed
from fhir_server.search.types.reference import configure_local_bases
from fhir_server.storage import ResourceStore
from fhir_server.storage.operator import open_database

Json = dict[str, Any]
MINIMAL = {"prefer": "return=minimal"}
# How a refused transaction names its failed entry (`bundles.responses.naming_entry`).
ENTRY_LABEL = re.compile(r"Bundle\.entry\[(\d+)\]")


@dataclass
class Skipped:
    """An entry left out of its Bundle by `--skip-invalid` (see `skipping`)."""

    index: int
    """The entry's position in the Bundle as read."""
    what: str
    """`Type/id`, else the fullUrl, else the type."""
    reason: str


@dataclass
class Outcome:
    """What one Bundle did: resources written, the errors of the entries (or Bundle) that failed,
    and the entries left out (`--skip-invalid`)."""

    written: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    status: int = 200
    """The HTTP status of the Bundle's response (0: the server did not answer)."""
    refusal: Json | None = None
    """The OperationOutcome of a Bundle refused as a whole (a failed transaction)."""
    transactions: int = 1
    """The transactions the Bundle was submitted as: more than one when it was split (`splitting`)."""


class Target(Protocol):
    async def submit(self, bundle: Json) -> Outcome: ...


def outcome_of(status: int, body: Json | None) -> Outcome:
    """Count the written entries of a batch/transaction response, or report why it failed."""
    if status != 200 or not body or body.get("resourceType") != "Bundle":
        return Outcome(0, [f"HTTP {status}: {_diagnostics(body)}"], status=status, refusal=body)
    outcome = Outcome()
    for index, entry in enumerate(body.get("entry") or []):
        status_text = entry.get("response", {}).get("status", "")
        if status_text[:1] in ("2", "3"):
            outcome.written += 1
        else:
            outcome.errors.append(f"entry[{index}] {status_text}: {_diagnostics(entry['response'].get('outcome'))}")
    return outcome


def _diagnostics(outcome: Json | None) -> str:
    issues = (outcome or {}).get("issue") or []
    return "; ".join(i.get("diagnostics") or i.get("code", "") for i in issues) or "no details"


class DatabaseTarget:
    """Performs Bundles with the server's own interaction code on the database."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def submit(self, bundle: Json) -> Outcome:
        response: FhirResponse = await perform(self.ctx, FhirRequest("POST", "", [], MINIMAL, bundle))
        return outcome_of(response.status, response.resource)


@asynccontextmanager
async def database_target(settings: Settings) -> AsyncIterator[DatabaseTarget]:
    """A `DatabaseTarget` on the database the settings name (see `storage.operator`)."""
    async with open_database(settings) as database:
        await database.ensure_indexes(list(resource_types()), index_specs, is_managed)
        # Imported resources are indexed for the custom SearchParameters stored, like the server's writes.
        await follower(database).sync()
        if settings.base_url:
            configure_local_bases([settings.base_url])
        store = ResourceStore(database, indexer=extract, membership_field=compartments.KEY)
        audit = None
        if settings.audit_enabled:
            audit = AuditLog(database, store, fail_open=settings.audit_fail_open,
                             retention_days=settings.audit_retention_days)
            await audit.start()
        base_url = settings.base_url or "http://localhost"
        actor = Actor(identifier=getpass.getuser(), display="fhir-server import")
        auditor = RequestAuditor(audit, RequestFacts(new_id(), None, base_url, actor)) if audit else None
        try:
            yield DatabaseTarget(Context(settings, database, store, base_url, auditor=auditor))
        finally:
            if audit is not None:
                await audit.stop()


class HttpTarget:
    """Posts Bundles to a running server, one keep-alive connection per worker thread."""

    def __init__(self, base_url: str, token: str | None) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        self.secure = parts.scheme == "https"
        self.host = parts.netloc
        self.path = (parts.path or "") + "/"
        self.headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json", **MINIMAL}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    async def submit(self, bundle: Json) -> Outcome:
        return await asyncio.to_thread(self._post, fhir_json.dumps(bundle))

    def _post(self, body: bytes) -> Outcome:
        connection_type = http.client.HTTPSConnection if self.secure else http.client.HTTPConnection
        connection = connection_type(self.host, timeout=600)
        try:
            connection.request("POST", self.path, body, self.headers)
            reply = connection.getresponse()
            payload = reply.read()
        except OSError as error:
            return Outcome(0, [f"cannot reach the server: {error}"], status=0)
        finally:
            connection.close()
        try:
            parsed = fhir_json.loads(payload) if payload else None
        except fhir_json.JSONError:
            parsed = None
        return outcome_of(reply.status, parsed if isinstance(parsed, dict) else None)
