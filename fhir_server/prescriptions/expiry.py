"""Expiry: an active prescription past its validity period becomes `status=stopped`.

A sweep finds active MedicationRequests whose `dispenseRequest.validityPeriod.end` has passed
and stores a new version of each with status `stopped` and a `statusReason` saying it expired,
so reads and searches report it consistently. The server sweeps at start-up and then every
`FHIR_PRESCRIPTION_SWEEP_SECONDS`; `$dispense` checks the period itself, so an expired
prescription is never dispensed in the moments before a sweep catches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from fhir_server.fhir.primitives import now
from fhir_server.prescriptions import rules
from fhir_server.storage import Database, ResourceStore, Version
from fhir_server.storage.repository import SideWrites, VersionMismatch

log = logging.getLogger(__name__)

SWEEP_BATCH = 10_000
"""Candidates examined per sweep; the rest wait for the next one."""
EXPIRED_REASON = {"text": "Expired: the validity period ended"}


async def stop_expired(database: Database, store: ResourceStore, at: datetime | None = None,
                       audit: Callable[[], SideWrites] | None = None) -> int:
    """Stop every active prescription expired at `at` (default now); returns how many were stopped.

    `audit` gives the side writes that put each change on the audit trail in its own transaction.
    """
    at = at or now()
    # Validity ends are FHIR dates or dateTimes (strings); any that ended by `at` sorts before the
    # day after tomorrow whatever its zone. The exact test is `rules.expired`.
    bound = (at + timedelta(days=2)).date().isoformat()
    candidates = await store.find("MedicationRequest", {"res.status": "active",
                                                        "res.dispenseRequest.validityPeriod.end": {"$lt": bound}},
                                  SWEEP_BATCH)
    stopped = 0
    for version in candidates:
        if not rules.expired(version.resource, at):
            continue
        try:
            await database.transaction(lambda session, v=version: store.update(
                session, "MedicationRequest", v.id, _stopped(v), if_match=v.vid, side=audit() if audit else None))
        except VersionMismatch:  # changed since the query (dispensed, cancelled...): the next sweep decides
            continue
        stopped += 1
    return stopped


def _stopped(version: Version) -> dict:
    return {**version.resource, "status": "stopped", "statusReason": EXPIRED_REASON}


class ExpirySweeper:
    """Runs `stop_expired` at start-up and then every `interval` seconds (0: never)."""

    def __init__(self, database: Database, store: ResourceStore, interval: float,
                 audit: Callable[[], SideWrites] | None = None) -> None:
        self.database, self.store, self.interval, self.audit = database, store, interval, audit
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        if self.interval > 0:
            self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        while True:
            try:
                stopped = await stop_expired(self.database, self.store, audit=self.audit)
                if stopped:
                    log.info("stopped %d expired prescriptions", stopped)
            except Exception:  # a failed sweep (database down...) is retried at the next interval
                log.exception("prescription expiry sweep failed")
            await asyncio.sleep(self.interval)
