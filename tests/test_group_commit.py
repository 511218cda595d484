"""Group commit (`storage/group_commit.py`) against the real database: concurrent items share a
batch, in a transaction or (`transactional=False`, the audit outbox) without one, and one bad
item of a batch fails alone while the others are written exactly once."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import BulkWriteError

from fhir_server.storage.database import Database, Session
from fhir_server.storage.errors import only_duplicate_keys
from fhir_server.storage.group_commit import GroupCommit
from tests.fhir_data import unique


async def _run(mongodb_uri: str, transactional: bool) -> tuple[list[object], list[bool | None], list[str]]:
    database = Database(mongodb_uri, unique("group_commit"))
    # A validator the bad item fails (any error but a duplicate key: without a transaction, the
    # retry of a batch that failed part-way finds the others' duplicates, and counts them done).
    collection = await database.db.create_collection("items", validator={"n": {"$type": "int"}})
    sessions: list[bool | None] = []

    async def write(session: Session | None, items: list[str]) -> list[str]:
        sessions.append(None if session is None else session.in_transaction)
        try:
            await collection.insert_many([{"_id": item, "n": 1 if item != "bad" else "one"} for item in items],
                                         ordered=False, session=session)
        except BulkWriteError as error:
            if session is not None or not only_duplicate_keys(error):
                raise  # without a transaction a retry finds what the batch wrote: done already
        return [f"stored {item}" for item in items]

    commit: GroupCommit[str, str] = GroupCommit(database, write, transactional=transactional)
    try:
        items = ["a", "b", "bad", "c", "d"]
        results = await asyncio.gather(*(commit.submit(item) for item in items), return_exceptions=True)
        stored = sorted([doc["_id"] async for doc in collection.find({})])
        return results, sessions, stored
    finally:
        await database.client.drop_database(database.db.name)
        await database.close()


@pytest.mark.parametrize("transactional", [True, False])
def test_one_bad_item_fails_alone(mongodb_uri: str, transactional: bool) -> None:
    results, sessions, stored = asyncio.run(_run(mongodb_uri, transactional))
    assert [r for i, r in enumerate(results) if i != 2] == ["stored a", "stored b", "stored c", "stored d"]
    assert isinstance(results[2], BulkWriteError)
    assert stored == ["a", "b", "c", "d"]
    # The first write carried every item (one batch), then each was retried on its own.
    assert len(sessions) == 6
    assert set(sessions) == ({True} if transactional else {None})
