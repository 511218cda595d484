"""Group commit: concurrent small writes share one transaction.

On SecantusDB most of a write's cost is per command and per commit, not per document, so
writing 20 concurrent creates as one transaction with one `insert_many` per collection costs a
fraction of 20 separate transactions. A flush starts as soon as a writer is idle, so a lone
request waits for nothing; under load, items arriving during a flush form the next batch.
Up to `in_flight` batches are written at once: while one waits for the database (its inserts,
its commit's sync to disk), the next is being staged and sent, instead of queueing behind it.
If a batch fails, its items are retried one by one, so one bad item fails alone. Items that need
no atomicity together (independent records written by one `insert_many`, itself one commit on
SecantusDB) can skip the transaction (`transactional=False`): one round trip instead of two.
Then a failed batch may have written some items before they are retried one by one, so `write`
must count an item already stored as written (the audit outbox: a duplicate `_id`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from fhir_server.storage.database import Database, Session

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Batches `submit`ted items into transactions running `write(session, items) -> results`
    (with `transactional=False`, `write(None, items)`), at most `in_flight` batches at a time."""

    def __init__(self, database: Database, write: Callable[[Session | None, list[Item]], Awaitable[list[Result]]],
                 max_batch: int = 64, in_flight: int = 2, transactional: bool = True) -> None:
        self.database = database
        self.write = write
        self.max_batch = max_batch
        self.in_flight = in_flight
        self.transactional = transactional
        self.pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self.flushers: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        """Write `item` in the next batch; returns its result once the batch has committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if len(self.flushers) < self.in_flight:
            task = asyncio.create_task(self._flush())
            self.flushers.add(task)
            task.add_done_callback(self.flushers.discard)
        return await future

    async def drain(self) -> None:
        """Wait until everything submitted so far is written (used at shut-down)."""
        while self.flushers:
            await asyncio.shield(next(iter(self.flushers)))

    async def _flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
            try:
                await self._commit(batch)
            except Exception as error:  # the futures carry it; nothing may escape the task
                log.exception("group commit failed: %s", error)

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        try:
            if self.transactional:
                results = await self.database.transaction(lambda session: self.write(session, items))
            else:
                results = await self.write(None, items)
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            for single in batch:
                await self._commit([single])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(future: asyncio.Future, *, result: object = None, error: BaseException | None = None) -> None:
    if future.done():  # the requester went away; the write stands, like any committed write
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
