"""The MongoDB connection: client settings, bounded transaction retries and collection indexes."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, DuplicateKeyError, ExecutionTimeout, PyMongoError

from fhir_server.storage.codecs import TYPE_REGISTRY
from fhir_server.storage.contained import CONTAINED

log = logging.getLogger(__name__)

T = TypeVar("T")
Session = AsyncClientSession

# Errors meaning "the database cannot be reached now": answered with 503, never a 500.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (ConnectionFailure, ExecutionTimeout)

HISTORY = "history"


class WriteConflict(Exception):
    """Another writer changed the same resource first; the whole transaction is retried."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, WriteConflict | DuplicateKeyError):
        return True
    if isinstance(exc, PyMongoError):
        return exc.has_error_label("TransientTransactionError") or getattr(exc, "code", None) == 112
    return False


class Database:
    """An `AsyncMongoClient` bound to one database, with the server's write discipline."""

    def __init__(self, uri: str, name: str, *, timeout_ms: int = 5000, transaction_attempts: int = 8) -> None:
        self.client: AsyncMongoClient = AsyncMongoClient(
            uri,
            tz_aware=True,
            type_registry=TYPE_REGISTRY,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=max(timeout_ms * 6, 30_000),
            maxPoolSize=200,
        )
        self.db = self.client[name]
        self.attempts = transaction_attempts

    def resources(self, resource_type: str) -> AsyncCollection:
        """The collection holding the current version of each resource of one type."""
        return self.db[resource_type]

    @property
    def history(self) -> AsyncCollection:
        """Every version of every resource, deletes included as tombstones."""
        return self.db[HISTORY]

    def collection(self, name: str) -> AsyncCollection:
        """A named internal collection (lower-case names never clash with resource types)."""
        return self.db[name]

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    async def close(self) -> None:
        await self.client.close()

    async def ensure_indexes(self, resource_types: list[str], extra: Callable[[str], list[IndexModel]],
                             managed: Callable[[str], bool]) -> None:
        """Create the history and contained-index indexes and, per resource type and for the
        contained index, those `extra` asks for; drop the indexes `managed` claims for the server
        that `extra` no longer asks for."""
        await self.history.create_indexes([
            IndexModel([("t", ASCENDING), ("ts", DESCENDING), ("_id", DESCENDING)], name="type"),
            IndexModel([("ts", DESCENDING), ("_id", DESCENDING)], name="system"),
        ])
        # Contained searches select by type; a new container version replaces its documents by `c`.
        await self.collection(CONTAINED).create_indexes([
            IndexModel([("t", ASCENDING), ("_id", ASCENDING)], name="type"),
            IndexModel([("c", ASCENDING)], name="container"),
        ])
        for resource_type in [*resource_types, CONTAINED]:
            collection, models = self.resources(resource_type), extra(resource_type)
            if models:
                await collection.create_indexes(models)
            wanted = {model.document["name"] for model in models}
            for name in await collection.index_information():
                if name not in wanted and managed(name):
                    await collection.drop_index(name)

    async def transaction(self, work: Callable[[Session], Awaitable[T]]) -> T:
        """Run `work` in one multi-document transaction, retrying transient conflicts.

        The driver's own `with_transaction` retries for up to 120 s, which turns an outage into a
        hung request; here attempts are bounded and connection errors surface at once.
        """
        async with self.client.start_session() as session:
            for attempt in range(1, self.attempts + 1):
                await session.start_transaction()
                try:
                    result = await work(session)
                    await self._commit(session)
                    return result
                except BaseException as exc:
                    if session.in_transaction:
                        await _abort_quietly(session)
                    if attempt < self.attempts and _is_transient(exc):
                        await asyncio.sleep(random.uniform(0, 0.005 * 2 ** attempt))
                        continue
                    if isinstance(exc, PyMongoError) and _is_transient(exc) and not isinstance(
                            exc, DuplicateKeyError):
                        # Out of attempts: a conflict the caller answers (409), not a crash.
                        raise WriteConflict(f"the database kept reporting conflicts: {exc}") from exc
                    raise
        raise AssertionError("unreachable")

    async def _commit(self, session: Session) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                await session.commit_transaction()
                return
            except PyMongoError as exc:
                if attempt < self.attempts and exc.has_error_label("UnknownTransactionCommitResult"):
                    continue
                raise


async def _abort_quietly(session: Session) -> None:
    try:
        await session.abort_transaction()
    except PyMongoError as exc:  # the transaction is gone either way
        log.debug("abort after failure: %s", exc)

