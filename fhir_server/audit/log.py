"""The audit write path: durable before the response, chained by one sealer per process.

Two ways in, one way out:
- a request that changed nothing (read, search, a refused request...) hands its records to
  `record()` and is answered only once its events are committed;
- a write inserts its records into the `audit_outbox` collection *inside its own transaction*
  (`write_outbox`), so a change can never commit without its audit record;
- the sealer takes both, in batches: inside one transaction it reads the chain head, turns
  records into BALP AuditEvents, chains them (sequence, previous hash, own hash), appends them to
  the AuditEvent collection, records each link in `audit_chain`, deletes the outbox records and
  moves the head. Requests never compute the chain, so they never wait on each other; several
  server processes contend only on the head, which the transaction retry resolves.

If the audit store cannot be written, `record()` raises and the request fails with 503, unless
`FHIR_AUDIT_FAIL_OPEN` is set (then the failure is logged and the events are retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict
from typing import Any

from fhir_server.audit import chain
from fhir_server.audit.balp import audit_events
from fhir_server.audit.record import Actor, AuditRecord
from fhir_server.fhir.primitives import now
from fhir_server.storage import Database, ResourceStore, Session

log = logging.getLogger(__name__)
Json = dict[str, Any]

OUTBOX = "audit_outbox"
CHAIN = "audit_chain"
STATE = "audit_state"
RESOURCE_TYPE = "AuditEvent"


def _to_document(record: AuditRecord) -> Json:
    document = asdict(record)
    document["actor"] = asdict(record.actor) if record.actor else None
    return document


def _from_document(document: Json) -> AuditRecord:
    fields = {k: v for k, v in document.items() if k != "_id"}
    actor = fields.pop("actor")
    for name in ("resources", "patients"):
        fields[name] = tuple(fields[name])
    return AuditRecord(actor=Actor(**{**actor, "roles": tuple(actor["roles"])}) if actor else None, **fields)


class AuditUnavailable(Exception):
    """The audit store could not be written; the request must not proceed unaudited."""


class AuditLog:
    """Records AuditEvents for the server; see the module docstring for the guarantees."""

    def __init__(self, database: Database, store: ResourceStore, *, fail_open: bool = False,
                 batch_size: int = 256, interval: float = 0.25) -> None:
        self.database = database
        self.store = store
        self.fail_open = fail_open
        self.batch_size = batch_size
        self.interval = interval
        self.pending: list[tuple[list[AuditRecord], asyncio.Future[None] | None]] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.database.collection(CHAIN).create_index("t")
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Seal everything still pending, then stop the sealer."""
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self._seal_all()

    async def record(self, records: list[AuditRecord]) -> None:
        """Write the events of `records`; returns once they are committed."""
        if not records:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((records, future))
        self.wake.set()
        try:
            await future
        except Exception as error:
            if not self.fail_open:
                raise AuditUnavailable(str(error)) from error
            log.error("audit events not yet written (FHIR_AUDIT_FAIL_OPEN is set, retrying): %s", error)
            self.pending.append((records, None))

    async def write_outbox(self, session: Session, records: list[AuditRecord]) -> None:
        """Record `records` inside the caller's transaction; the sealer chains them soon after."""
        if records:
            await self.database.collection(OUTBOX).insert_many([_to_document(r) for r in records],
                                                               session=session)

    def nudge(self) -> None:
        """Ask the sealer to look at the outbox now (after a write committed)."""
        self.wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.interval)
            self.wake.clear()
            await self._seal_all()

    async def _seal_all(self) -> None:
        while True:
            batch, self.pending = self.pending[:self.batch_size], self.pending[self.batch_size:]
            try:
                sealed_outbox = await self.database.transaction(
                    lambda session, batch=batch: self._seal(session, batch))
            except Exception as error:  # the waiting requests get it; the outbox stays for next time
                log.warning("sealing audit events failed: %s", error)
                retry = [(records, None) for records, future in batch if future is None]
                for _, future in batch:
                    if future is not None and not future.done():
                        future.set_exception(error)
                self.pending = retry + self.pending
                return
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_result(None)
            if not self.pending and sealed_outbox < self.batch_size:
                return

    async def _seal(self, session: Session, batch: list[tuple[list[AuditRecord], Any]]) -> int:
        outbox = self.database.collection(OUTBOX)
        queued = await outbox.find({}, session=session).sort("_id", 1).limit(self.batch_size).to_list(None)
        records = [r for records, _ in batch for r in records] + [_from_document(d) for d in queued]
        if not records:
            return 0
        state = self.database.collection(STATE)
        head = await state.find_one({"_id": "head"}, session=session) or {"seq": 0, "hash": chain.GENESIS}
        sequence, previous = head["seq"], head["hash"]
        events, links = [], []
        for record in records:
            for event in audit_events(record):
                sequence += 1
                previous = chain.seal(event, sequence, previous)
                events.append(event)
                links.append({"_id": sequence, "e": event["id"], "h": previous, "t": record.recorded})
        await self.store.append_log(session, RESOURCE_TYPE, events)
        await self.database.collection(CHAIN).insert_many(links, session=session)
        if queued:
            await outbox.delete_many({"_id": {"$in": [d["_id"] for d in queued]}}, session=session)
        await state.update_one({"_id": "head"}, {"$set": {"seq": sequence, "hash": previous, "at": now()}},
                               upsert=True, session=session)
        return len(queued)
