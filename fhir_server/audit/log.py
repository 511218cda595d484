"""The audit write path: a durable record before the response, chained soon after.

Every audited interaction leaves a compact record in the `audit_outbox` collection:
- a write inserts it *inside its own transaction* (the store's side writes, see
  `capture.WriteTrail`), so a change never commits unaudited;
- anything else (read, search, refusal, failure) hands it to `record()`, which returns once the
  record is committed (a group commit writes the records of concurrent requests with one
  `insert_many`, no transaction: they are independent); only then is the response sent.

The sealer (one task per process) turns outbox records into BALP AuditEvents: inside one
transaction it takes a batch, chains the events (sequence, previous hash, own hash), appends
them to the AuditEvent collection, records each link in `audit_chain`, deletes the records and
moves the chain head. Requests never compute the chain, so they never wait on each other or on
indexing; several server processes contend only on the head, which the transaction retry
resolves. Sealing yields to clinical traffic: while requests keep arriving it waits, unless this
process's backlog exceeds `MAX_BACKLOG` records or its oldest record is `MAX_LAG` old; as soon
as traffic pauses (or a limit is reached) it seals everything in large, cheap batches. So under
sustained load AuditEvents become searchable at most about `MAX_LAG` late, while the records
they come from are durable before each response.

If the outbox cannot be written, `record()` raises `AuditUnavailable` and the request fails with
503, unless `FHIR_AUDIT_FAIL_OPEN` is set: then the failure is logged and the records are kept
in memory and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from fhir_server.audit import chain
from fhir_server.audit.balp import audit_events
from fhir_server.audit.collections import CHAIN, OUTBOX, RESOURCE_TYPE, STATE
from fhir_server.audit.record import Actor, AuditRecord
from fhir_server.audit.retention import prune
from fhir_server.fhir.primitives import now
from fhir_server.storage import Database, ResourceStore, Session
from fhir_server.storage.database import WriteConflict
from fhir_server.storage.errors import only_duplicate_keys
from fhir_server.storage.group_commit import GroupCommit

log = logging.getLogger(__name__)
Json = dict[str, Any]

# Traffic seen within this many seconds counts as "busy": the sealer then waits (see above).
BUSY_WINDOW = 0.5
MAX_BACKLOG = 5000
MAX_LAG = 30.0


def record_document(record: AuditRecord) -> Json:
    """An audit record as an outbox document (built field by field: `asdict` deep-copies, slowly)."""
    document = {f.name: getattr(record, f.name) for f in fields(AuditRecord)}
    if record.actor is not None:
        document["actor"] = {f.name: getattr(record.actor, f.name) for f in fields(Actor)}
    return document


def _from_document(document: Json) -> AuditRecord:
    values = {k: v for k, v in document.items() if k != "_id"}
    actor = values.pop("actor")
    for name in ("resources", "patients"):
        values[name] = tuple(values[name])
    return AuditRecord(actor=Actor(**{**actor, "roles": tuple(actor["roles"])}) if actor else None, **values)


class AuditUnavailable(Exception):
    """The audit store could not be written; the request must not proceed unaudited."""


class AuditLog:
    """Records AuditEvents for the server; see the module docstring for the guarantees."""

    def __init__(self, database: Database, store: ResourceStore, *, fail_open: bool = False,
                 retention_days: int | None = None, batch_size: int = 500, interval: float = 0.25) -> None:
        self.database = database
        self.store = store
        self.fail_open = fail_open
        self.retention = timedelta(days=retention_days) if retention_days is not None else None
        self.batch_size = batch_size
        self.interval = interval
        # Records are independent: a batch is one insert_many, no transaction (one round trip).
        self.outbox: GroupCommit[list[Json], None] = GroupCommit(database, self._insert_records, transactional=False)
        self.unwritten: list[Json] = []
        """Records that could not be written (fail-open only), retried by the sealer."""
        self.last_activity = 0.0
        self.backlog = 0
        """Records this process put in the outbox since the outbox was last found empty."""
        self.oldest: float | None = None
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.head: tuple[int, str] | None = None
        """The chain head as last committed: moved with a conditional update, re-read on conflict."""
        self.pruned_at: datetime | None = None

    async def start(self) -> None:
        await self.database.collection(CHAIN).create_index("t")
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Write what is pending, seal the outbox, then stop the sealer."""
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.outbox.drain()
        self.last_activity = 0.0
        await self._seal_outbox()

    async def record(self, records: list[AuditRecord]) -> None:
        """Make `records` durable; returns once they are committed to the outbox."""
        if not records:
            return
        self._arrived(len(records))
        documents = [record_document(r) for r in records]
        try:
            await self.outbox.submit(documents)
        except Exception as error:
            if not self.fail_open:
                raise AuditUnavailable(str(error)) from error
            log.error("audit records not written (FHIR_AUDIT_FAIL_OPEN is set, retrying): %s", error)
            self.unwritten.extend(documents)

    def nudge(self) -> None:
        """A write committed its audit record in the outbox."""
        self._arrived(1)

    def _arrived(self, count: int) -> None:
        self.last_activity = time.monotonic()
        self.backlog += count
        self.oldest = self.oldest or self.last_activity
        if self.backlog >= MAX_BACKLOG:
            self.wake.set()

    def _should_seal(self) -> bool:
        """Seal now: traffic has paused, or the backlog or its age reached their limits."""
        moment = time.monotonic()
        return (moment - self.last_activity >= BUSY_WINDOW or self.backlog >= MAX_BACKLOG
                or (self.oldest is not None and moment - self.oldest >= MAX_LAG))

    async def _insert_records(self, session: Session | None, batches: list[list[Json]]) -> list[None]:
        try:
            await self.database.collection(OUTBOX).insert_many([d for batch in batches for d in batch],
                                                               ordered=False, session=session)
        except BulkWriteError as error:
            # The driver gave each record its _id on the first try: on the retry of a batch that
            # failed part-way, a duplicate is a record that batch did write.
            if not only_duplicate_keys(error):
                raise
        return [None] * len(batches)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.interval)
            self.wake.clear()
            await self._retry_unwritten()
            if self._should_seal():
                await self._seal_outbox()
            await self._apply_retention()

    async def _retry_unwritten(self) -> None:
        if not self.unwritten:
            return
        documents, self.unwritten = self.unwritten, []
        try:
            await self.outbox.submit(documents)
        except Exception as error:
            log.warning("audit records still not written: %s", error)
            self.unwritten = documents + self.unwritten

    async def _seal_outbox(self) -> None:
        """Seal until the outbox is empty (the records of every process, not only ours)."""
        while True:
            try:
                sealed, self.head = await self.database.transaction(self._seal)
            except Exception as error:  # the records stay in the outbox for the next tick
                log.warning("sealing audit events failed: %s", error)
                self.head = None
                return
            if sealed < self.batch_size:
                self.backlog, self.oldest = 0, None
                return

    async def _seal(self, session: Session) -> tuple[int, tuple[int, str] | None]:
        """Chain and store one batch; returns how many records it sealed, and the new head."""
        outbox = self.database.collection(OUTBOX)
        queued = await outbox.find({}, session=session).sort("_id", 1).limit(self.batch_size).to_list(None)
        if not queued:
            return 0, self.head
        state = self.database.collection(STATE)
        head = self.head
        if head is None:
            stored = await state.find_one({"_id": "head"}, session=session) or {"seq": 0, "hash": chain.GENESIS}
            head = stored["seq"], stored["hash"]
        start = head[0]
        sequence, previous = head
        events, links = [], []
        for document in queued:
            record = _from_document(document)
            for event in audit_events(record):
                sequence += 1
                previous = chain.seal(event, sequence, previous)
                events.append(event)
                links.append({"_id": sequence, "e": event["id"], "h": previous, "t": record.recorded})
        try:
            await self.database.collection(CHAIN).insert_many(links, session=session)
        except BulkWriteError as error:
            if not only_duplicate_keys(error):
                raise
            # Another process sealed these sequence numbers since this one cached the head.
            self.head = None
            raise WriteConflict("the audit chain head moved") from None
        await self.store.append_log(session, RESOURCE_TYPE, events)
        # The batch is the outbox's first records by _id in this transaction's snapshot, so a range
        # removes exactly them (an `$in` of 500 ids cost SecantusDB 0.6 ms per record; this ~0.1).
        await outbox.delete_many({"_id": {"$lte": queued[-1]["_id"]}}, session=session)
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
