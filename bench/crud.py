"""CRUD benchmark: N creates then N reads over HTTP against the same work done with the driver.

    python -m bench.crud [-n 2000] [--concurrency 16] [--rounds 3] [--audit on|off]
                         [--url URL --mongodb-uri URI]

Without --url it starts `fhir-server serve` on a temporary embedded database. The driver baseline
inserts the same resources into a scratch collection of the same database and reads them back by
_id with the same concurrency. HTTP and driver phases alternate for `--rounds` rounds and each
phase keeps its fastest round: on a shared machine other load only ever slows a round down, and
alternating exposes both sides to the same load. Before each driver phase the server's audit
outbox is left to drain, so the sealing the HTTP phase caused does not slow the baseline down.
The storage floor (`bench.floor`) then writes the documents the first `n` creates stored
(Patients, history entries and, with audit on, their AuditEvents and chain links) again with the
driver, in batches of 8 by 2 writers as the group commit does: HTTP create / floor is the
server's own share of the ratio.
The last line is the HTTP/driver ratio of elapsed time (targets: reads <= 1.5x, creates <= 2.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import uuid
from pathlib import Path

from pymongo import AsyncMongoClient

from bench.floor import Source, floor
from bench.harness import Timing, audit_caught_up, live_server, timed
from bench.http_client import RawHttpClient
from fhir_server.audit.collections import CHAIN
from fhir_server.audit.collections import RESOURCE_TYPE as AUDIT_TYPE
from fhir_server.storage.database import HISTORY

EXAMPLE = json.loads((Path(__file__).parent / "data" / "patient.json").read_text())


def make_patient(i: int) -> dict:
    patient = copy.deepcopy(EXAMPLE)
    patient["identifier"][0]["value"] = f"bench-{i}"
    patient["name"][0]["family"] = f"Family{i}"
    return patient


async def http_phase(url: str, n: int, concurrency: int, auth: dict[str, str] | None = None
                     ) -> tuple[Timing, Timing]:
    ids: list[str] = [""] * n
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    client = RawHttpClient(url, concurrency, auth)
    bodies = [json.dumps(make_patient(i)).encode() for i in range(n)]

    async def create(i: int) -> None:
        reply = (await client.request("POST", "/Patient", bodies[i], headers)).check()
        ids[i] = reply.headers["location"].split("/")[-3]

    async def read(i: int) -> None:
        (await client.request("GET", f"/Patient/{ids[i]}", headers=headers)).check()

    try:
        return (await timed("HTTP create", n, concurrency, create),
                await timed("HTTP read", n, concurrency, read))
    finally:
        await client.close()


async def driver_phase(uri: str, database: str, n: int, concurrency: int) -> tuple[Timing, Timing]:
    client: AsyncMongoClient = AsyncMongoClient(uri, maxPoolSize=concurrency * 2)
    collection = client[database][f"bench_{uuid.uuid4().hex[:8]}"]
    documents = [{"_id": str(uuid.uuid4()), "vid": 1, "res": make_patient(i)} for i in range(n)]
    try:
        async def insert(i: int) -> None:
            await collection.insert_one(documents[i])

        async def find(i: int) -> None:
            assert await collection.find_one({"_id": documents[i]["_id"]}, {"res": 1}) is not None

        return (await timed("driver insert", n, concurrency, insert),
                await timed("driver find by _id", n, concurrency, find))
    finally:
        await collection.drop()
        await client.close()


FLOOR_BATCH = 8


def create_sources(n: int, audit: bool) -> list[Source]:
    """What `n` creates store: the Patients, their history entries, and their audit."""
    stored = [Source("Patient", {}, n), Source(HISTORY, {"t": "Patient"}, n)]
    if audit:
        stored += [Source(AUDIT_TYPE, {"res.action": "C"}, n), Source(CHAIN, {}, n)]
    return stored


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="resources to create and read (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--url", help="a running server (default: start fhir-server serve)")
    parser.add_argument("--mongodb-uri", help="its database, for the driver baseline")
    parser.add_argument("--database", default="fhir")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; each phase keeps its best")
    parser.add_argument("--audit", choices=("on", "off"), default="on",
                        help="FHIR_AUDIT of the server started (off: the REST core alone; bench.audit compares)")
    args = parser.parse_args()
    rounds: list[tuple[Timing, Timing, Timing, Timing]] = []
    with live_server(args.url, args.mongodb_uri, args.database, env={"FHIR_AUDIT": args.audit}) as server:
        await driver_phase(server.mongodb_uri, server.database, min(args.n, 200), args.concurrency)  # warm-up
        for _ in range(args.rounds):
            http = await http_phase(server.url, args.n, args.concurrency, server.auth)
            await audit_caught_up(server.mongodb_uri, server.database)  # its sealing is not the driver's load
            driver = await driver_phase(server.mongodb_uri, server.database, args.n, args.concurrency)
            rounds.append((*http, *driver))
        create_floor = await floor(server.mongodb_uri, server.database, create_sources(args.n, args.audit == "on"),
                                   args.n // FLOOR_BATCH, 2, "floor (stored documents)")
    http_create, http_read, driver_insert, driver_find = (
        min(phase, key=lambda timing: timing.seconds) for phase in zip(*rounds, strict=True))
    for timing in (http_create, http_read, driver_insert, driver_find, create_floor):
        print(timing.line())
    print(f"create: floor/driver {create_floor.seconds / driver_insert.seconds:.2f}x (the database's share), "
          f"HTTP/floor {http_create.seconds / create_floor.seconds:.2f}x (the server's own)")
    print(f"ratio HTTP/driver: create {http_create.seconds / driver_insert.seconds:.2f}x "
          f"(target <= 2.5x), read {http_read.seconds / driver_find.seconds:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    asyncio.run(main())
