"""The audit write path: durable before the response, chained by one sealer per process.

Two ways in, one way out:
- a request that changed nothing (read, search, a refused request...) hands its records to
  `record()` and is answered only once its events are committed;
- a write inserts its records into the `audit_outbox` collection *inside its own transaction*
  (the store's side writes, see `capture.WriteTrail`), so a change never commits unaudited;
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
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from fhir_server.audit import chain
from fhir_server.audit.balp import audit_events
from fhir_server.audit.collections import CHAIN, OUTBOX, RESOURCE_TYPE, STATE
from fhir_server.audit.record import Actor, AuditRecord
from fhir_server.audit.retention import prune
from fhir_server.fhir.primitives import now
from fhir_server.storage import Database, ResourceStore, Session
from fhir_server.storage.database import WriteConflict

log = logging.getLogger(__name__)
Json = dict[str, Any]



def record_document(record: AuditRecord) -> Json:
    """An audit record as an outbox document."""
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
                 retention_days: int | None = None, batch_size: int = 256, interval: float = 0.25) -> None:
        self.database = database
        self.store = store
        self.fail_open = fail_open
        self.retention = timedelta(days=retention_days) if retention_days is not None else None
        self.pruned_at: datetime | None = None
        self.batch_size = batch_size
        self.interval = interval
        self.pending: list[tuple[list[AuditRecord], asyncio.Future[None] | None]] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        # Whether the outbox may hold records (from our writes, or other processes' between ticks);
        # flushes for reads alone then skip the outbox query.
        self.outbox_dirty = True
        # The chain head as last seen: moved with a conditional update, re-read only on conflict.
        self.head: tuple[int, str] | None = None

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

    def nudge(self) -> None:
        """Ask the sealer to look at the outbox now (after a write committed)."""
        self.outbox_dirty = True
        self.wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), self.interval)
            except TimeoutError:
                self.outbox_dirty = True  # other processes' writes, or records left by a crash
            self.wake.clear()
            await self._seal_all()
            await self._apply_retention()

    async def _apply_retention(self) -> None:
        """Hourly, remove events older than the retention period (`FHIR_AUDIT_RETENTION_DAYS`)."""
        moment = now()
        if self.retention is None or (self.pruned_at and moment - self.pruned_at < timedelta(hours=1)):
            return
        self.pruned_at = moment
        try:
            removed = await prune(self.database, moment - self.retention)
        except Exception as error:
            log.warning("audit retention pruning failed (will retry): %s", error)
            return
        if removed:
            log.info("audit retention: pruned %d AuditEvents older than %s", removed, self.retention)

    async def _seal_all(self) -> None:
        while True:
            batch, self.pending = self.pending[:self.batch_size], self.pending[self.batch_size:]
            try:
                sealed_outbox, self.head = await self.database.transaction(
                    lambda session, batch=batch: self._seal(session, batch))
            except Exception as error:  # the waiting requests get it; the outbox stays for next time
                log.warning("sealing audit events failed: %s", error)
                self.head = None
                retry = [(records, None) for records, future in batch if future is None]
                for _, future in batch:
                    if future is not None and not future.done():
                        future.set_exception(error)
                self.pending = retry + self.pending
                return
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_result(None)
            if sealed_outbox < self.batch_size:
                self.outbox_dirty = False
            if not self.pending and sealed_outbox < self.batch_size:
                return

    async def _seal(self, session: Session, batch: list[tuple[list[AuditRecord], Any]]
                    ) -> tuple[int, tuple[int, str] | None]:
        """Chain and store one batch; returns how many outbox records it took, and the new head."""
        outbox = self.database.collection(OUTBOX)
        queued = []
        if self.outbox_dirty:
            queued = await outbox.find({}, session=session).sort("_id", 1).limit(self.batch_size).to_list(None)
        records = [r for records, _ in batch for r in records] + [_from_document(d) for d in queued]
        if not records:
            return 0, self.head
        state = self.database.collection(STATE)
        head = self.head
        if head is None:
            stored = await state.find_one({"_id": "head"}, session=session) or {"seq": 0, "hash": chain.GENESIS}
            head = stored["seq"], stored["hash"]
        start = head[0]
        sequence, previous = head
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
        try:
            moved = await state.update_one({"_id": "head", "seq": start},
                                           {"$set": {"seq": sequence, "hash": previous, "at": now()}},
                                           upsert=start == 0, session=session)
        except DuplicateKeyError:
            moved = None
        if moved is None or (moved.matched_count == 0 and moved.upserted_id is None):
            self.head = None  # another process sealed meanwhile: the retry re-reads the head
            raise WriteConflict("the audit chain head moved")
        return len(queued), (sequence, previous)
