"""The audit of a transaction's entries: every record is written inside the transaction.

Writes already record themselves as side writes of the transaction. Reads and searches would
otherwise be recorded through the audit log's own commit while the transaction is open, and
SecantusDB answers concurrent inserts into the outbox with write conflicts until the attempts
run out. Staged into the transaction instead, their records commit with it; if it rolls back,
nothing the reads found was disclosed, and the Bundle's own record names the failure.
"""

from __future__ import annotations

from fhir_server.interactions.model import Auditor, FhirRequest, FhirResponse, Json, Route, WriteTrail
from fhir_server.storage import Version
from fhir_server.storage.repository import PendingWrites


class InTransaction:
    """An `Auditor` staging the records of entries that change nothing into the transaction's writes."""

    def __init__(self, auditor: Auditor, pending: PendingWrites) -> None:
        self.auditor = auditor
        self.pending = pending

    def trail(self, route: Route) -> WriteTrail:
        return self.auditor.trail(route)

    async def record(self, req: FhirRequest, route: Route | None, response: FhirResponse,
                     touched: list[Version]) -> None:
        for collection, document in self.record_documents(req, route, response, touched):
            self.pending.add(collection, document)

    def written(self) -> None:
        self.auditor.written()

    def record_documents(self, req: FhirRequest, route: Route | None, response: FhirResponse,
                         touched: list[Version]) -> list[tuple[str, Json]]:
        return self.auditor.record_documents(req, route, response, touched)
