"""Transaction Bundle benchmark: patient Bundles over HTTP against inserting the same documents with the driver.

    python -m bench.transaction [-n 200] [--concurrency 2] [--url URL --mongodb-uri URI]

Posts `n` generated patient Bundles (`bench.patient_bundles`: Patient, Practitioners,
Organization, Encounters, Observations, Conditions, MedicationRequests cross-referenced by
urn:uuid) as transactions with `Prefer: return=minimal`, with search indexing and audit on as
the server runs by default. The driver baseline inserts the same resources, as documents of the
stored shape, with one `insert_many` per collection per Bundle (no transaction: concurrent
transactional inserts conflict on SecantusDB), into scratch collections without indexes.
Prints resources/s, p50/p95 per Bundle and the ratio of elapsed times (target: at least 1,000
resources/s end to end on the embedded database). The storage floor (`bench.floor`) writes the
documents the server stored for the measured Bundles (resources with their index values, history
entries, and with audit on the AuditEvents and chain links) again with the driver, one Bundle's
share per unit: the rate no server storing them on this database can pass.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections import defaultdict

import orjson
from pymongo import AsyncMongoClient

from bench.floor import Source, floor
from bench.harness import Timing, audit_caught_up, live_server, timed
from bench.http_client import RawHttpClient
from bench.patient_bundles import patient_bundle
from fhir_server.audit.collections import CHAIN
from fhir_server.audit.collections import RESOURCE_TYPE as AUDIT_TYPE
from fhir_server.storage.database import HISTORY

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
           "Prefer": "return=minimal"}


async def http_phase(url: str, bundles: list[dict], concurrency: int, auth: dict[str, str] | None = None
                     ) -> Timing:
    client = RawHttpClient(url, concurrency, auth)
    bodies = [orjson.dumps(b) for b in bundles]

    async def post(i: int) -> None:
        reply = (await client.request("POST", "/", bodies[i], HEADERS)).check()
        if b'"transaction-response"' not in reply.body:
            raise RuntimeError(f"unexpected reply {reply.body[:200]!r}")

    try:
        return await timed("HTTP transaction", len(bodies), concurrency, post)
    finally:
        await client.close()


async def driver_phase(uri: str, database: str, bundles: list[dict], concurrency: int) -> Timing:
    client: AsyncMongoClient = AsyncMongoClient(uri, maxPoolSize=concurrency * 2)
    prefix = f"bench_{uuid.uuid4().hex[:8]}_"
    db = client[database]

    async def insert(i: int) -> None:
        by_type: dict[str, list[dict]] = defaultdict(list)
        for entry in bundles[i]["entry"]:
            resource = entry["resource"]
            by_type[resource["resourceType"]].append({"_id": str(uuid.uuid4()), "vid": 1, "res": resource})
        for resource_type, documents in by_type.items():
            await db[prefix + resource_type].insert_many(documents, ordered=False)

    try:
        return await timed("driver insert_many", len(bundles), concurrency, insert)
    finally:
        for name in await db.list_collection_names():
            if name.startswith(prefix):
                await db.drop_collection(name)
        await client.close()


def _per_resource(timing: Timing, resources: int) -> str:
    return (f"{timing.label:<22} {resources / timing.seconds:8.0f} resources/s   per Bundle p50 "
            f"{timing.percentile(50):7.1f} ms   p95 {timing.percentile(95):7.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="Bundles to post (default 200)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--encounters", type=int, default=4, help="Encounters per patient (default 4: 36 resources)")
    parser.add_argument("--audit", choices=("on", "off"), default="on",
                        help="FHIR_AUDIT of the server started (default on); off isolates the Bundle path")
    parser.add_argument("--url", help="a running server (default: start fhir-server serve)")
    parser.add_argument("--mongodb-uri", help="its database, for the driver baseline")
    parser.add_argument("--database", default="fhir")
    args = parser.parse_args()
    bundles = [patient_bundle(seed, args.encounters) for seed in range(args.n)]
    resources = sum(len(b["entry"]) for b in bundles)
    with live_server(args.url, args.mongodb_uri, args.database, env={"FHIR_AUDIT": args.audit}) as server:
        warm_up = [patient_bundle(-1 - i, args.encounters) for i in range(5)]
        await http_phase(server.url, warm_up, 1, server.auth)
        http = await http_phase(server.url, bundles, args.concurrency, server.auth)
        await audit_caught_up(server.mongodb_uri, server.database)  # its sealing is not the driver's load
        driver = await driver_phase(server.mongodb_uri, server.database, bundles, args.concurrency)
        share = args.n / (args.n + len(warm_up))
        stored = [Source(name, {}, share=share) for name in sorted(
            {e["resource"]["resourceType"] for b in bundles for e in b["entry"]} | {HISTORY}
            | ({AUDIT_TYPE, CHAIN} if args.audit == "on" else set()))]
        stored_floor = await floor(server.mongodb_uri, server.database, stored, args.n, args.concurrency,
                                   "floor (stored documents)")
    print(f"{args.n} Bundles, {resources} resources, concurrency {args.concurrency}, audit {args.audit}")
    print(_per_resource(http, resources))
    print(_per_resource(driver, resources))
    print(_per_resource(stored_floor, resources))
    print(f"ratio HTTP/driver: {http.seconds / driver.seconds:.2f}x; "
          f"{resources / http.seconds:.0f} resources/s end to end (target >= 1000); "
          f"the storage floor allows at most {resources / stored_floor.seconds:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
