"""Group commit: concurrent small writes share one transaction.

On SecantusDB most of a write's cost is per command and per commit, not per document, so
writing 20 concurrent creates as one transaction with one `insert_many` per collection costs a
fraction of 20 separate transactions. A flush starts as soon as the writer is idle, so a lone
request waits for nothing; under load, items arriving during a flush form the next batch.
If a batch fails, its items are retried one by one, so one bad item fails alone.
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
    """Batches `submit`ted items into transactions running `write(session, items) -> results`."""

    def __init__(self, database: Database, write: Callable[[Session, list[Item]], Awaitable[list[Result]]],
                 max_batch: int = 64) -> None:
        self.database = database
        self.write = write
        self.max_batch = max_batch
        self.pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self.flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Write `item` in the next batch; returns its result once the batch has committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())
        return await future

    async def drain(self) -> None:
        """Wait until everything submitted so far is written (used at shut-down)."""
        while self.flusher is not None and not self.flusher.done():
            await asyncio.shield(self.flusher)

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
            results = await self.database.transaction(lambda session: self.write(session, items))
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
