"""What index entries cost the embedded database: the same documents inserted under three layouts.

    python -m bench.index_cost [-n 2000] [--fields 8] [--values 2] [--rounds 2]

Each document carries `--fields` fields of `--values` strings each and an 800-byte payload, and
is inserted in transactions of 40 (as a Bundle or a group commit writes them) into a collection
with no secondary index, one index per field (how search parameters are indexed), or one
multikey index over all the values. Printed: documents/s per layout, best of `--rounds`, and the
database time each index entry adds per document. This is the measurement behind the index
choices of `fhir_server.search.indexes` and behind the bound it puts on write rates.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from fhir_server.storage.embedded import EmbeddedDatabase

BATCH = 40
LAYOUTS = ("no index", "index per field", "one multikey index")


def documents(n: int, fields: int, values: int, layout: str) -> list[dict]:
    rng = random.Random(7)
    made = []
    for i in range(n):
        keys = {f"f{f}": [f"f{f}|v{rng.randrange(10 ** 6)}" for _ in range(values)] for f in range(fields)}
        keyed = {"k": [v for vs in keys.values() for v in vs]} if layout == LAYOUTS[2] else {"sp": keys}
        made.append({"_id": i, **keyed, "res": {"text": "x" * 800}})
    return made


async def insert_rate(client: AsyncMongoClient, name: str, layout: str, args: argparse.Namespace) -> float:
    db = client.bench_index_cost
    await db.drop_collection(name)
    collection = await db.create_collection(name)
    if layout == LAYOUTS[1]:
        for f in range(args.fields):
            await collection.create_index(f"sp.f{f}")
    elif layout == LAYOUTS[2]:
        await collection.create_index("k")
    batch = documents(args.n, args.fields, args.values, layout)
    started = time.perf_counter()
    for first in range(0, args.n, BATCH):
        async def write(session: AsyncClientSession, first: int = first) -> None:
            await collection.insert_many(batch[first:first + BATCH], session=session)

        async with client.start_session() as session:
            await session.with_transaction(write)
    return args.n / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="documents per layout and round")
    parser.add_argument("--fields", type=int, default=8, help="indexed fields per document")
    parser.add_argument("--values", type=int, default=2, help="values per field (index entries)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    best = dict.fromkeys(LAYOUTS, 0.0)
    with tempfile.TemporaryDirectory() as data_dir, EmbeddedDatabase(data_dir) as uri:
        client: AsyncMongoClient = AsyncMongoClient(uri)
        try:
            for _ in range(args.rounds):
                for i, layout in enumerate(LAYOUTS):
                    best[layout] = max(best[layout], await insert_rate(client, f"layout{i}", layout, args))
        finally:
            await client.close()
    entries = args.fields * args.values
    print(f"{args.n} documents, {args.fields} fields x {args.values} values = {entries} index entries each")
    for layout, rate in best.items():
        print(f"{layout:<20} {rate:8.0f} documents/s   {1000 / rate:6.2f} ms each")
    for layout in LAYOUTS[1:]:
        added = 1000 / best[layout] - 1000 / best[LAYOUTS[0]]
        print(f"{layout}: {added / entries:.3f} ms per index entry")


if __name__ == "__main__":
    asyncio.run(main())
