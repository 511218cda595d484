"""The storage floor: the documents the server stored, written again directly with the driver.

A server that keeps every version in a history store, indexes each resource for search and
audits every access cannot write less than the documents it stores. The floor copies them (the
resource documents with their `sp` index values, their history entries, the AuditEvents and
chain links) into scratch collections given the same indexes, each unit of work in one
transaction (one commit, as the server's) with `insert_many` per collection, at the same
concurrency. So a benchmark's ratio to the plain driver baseline
splits into the database's share (floor / driver) and the server's own (HTTP / floor).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from bench.harness import Timing, timed


@dataclass(frozen=True)
class Source:
    """Documents of one collection to copy: those matching `query`, at most `limit` (0: all), of
    which the first `share` (the measured work's, where a warm-up wrote the rest)."""

    collection: str
    query: dict
    limit: int = 0
    share: float = 1.0


async def floor(uri: str, database: str, sources: list[Source], units: int, concurrency: int,
                label: str) -> Timing:
    """Time `units` inserts, each of one slice of every source's documents, into indexed copies."""
    client: AsyncMongoClient = AsyncMongoClient(uri, maxPoolSize=concurrency * 2)
    db = client[database]
    prefix = f"floor_{uuid.uuid4().hex[:8]}_"
    slices: list[tuple[str, list[list[dict]]]] = []
    try:
        for source in sources:
            documents = await db[source.collection].find(source.query).limit(source.limit).to_list(None)
            documents = documents[:round(len(documents) * source.share)]
            target = db[prefix + source.collection]
            await db.create_collection(target.name)
            for name, spec in (await db[source.collection].index_information()).items():
                if name != "_id_":
                    await target.create_index(spec["key"], name=name)
            size = -(-len(documents) // units)
            slices.append((target.name, [documents[i * size:(i + 1) * size] for i in range(units)]))

        async def insert(i: int) -> None:
            async def write(session: AsyncClientSession) -> None:
                for name, parts in slices:
                    if parts[i]:
                        await db[name].insert_many(parts[i], ordered=False, session=session)

            async with client.start_session() as session:
                await session.with_transaction(write)

        return await timed(label, units, concurrency, insert)
    finally:
        for name in await db.list_collection_names():
            if name.startswith(prefix):
                await db.drop_collection(name)
        await client.close()
