"""Audit overhead: the CRUD benchmark against a server with auditing off, then on, in one run.

    python -m bench.audit [-n 2000] [--concurrency 16] [--rounds 2]

Each round starts a fresh `fhir-server serve` (embedded database) with `FHIR_AUDIT=off` and
another with auditing on, runs N creates then N reads over HTTP on each, and keeps each
configuration's best round (the machine's other load only ever slows a round down). Every
request's audit record is durable before its response; turning records into chained,
searchable AuditEvents yields to traffic (docs/audit.md), so after the load the benchmark also
reports how long that sealing took to catch up. The last line is the on/off ratio of elapsed
time (target: under 1.3x).
"""

from __future__ import annotations

import argparse
import asyncio

from bench.crud import http_phase
from bench.harness import Timing, audit_caught_up, live_server


async def measure(audit: str, n: int, concurrency: int) -> tuple[Timing, Timing]:
    with live_server(None, None, env={"FHIR_AUDIT": audit}) as server:
        await http_phase(server.url, min(n, 200), concurrency, server.auth)  # warm-up
        timings = await http_phase(server.url, n, concurrency, server.auth)
        if audit == "on":
            waiting, sealed, seconds = await audit_caught_up(server.mongodb_uri, server.database)
            print(f"audit on: {waiting} records awaited sealing after the load; all {sealed} events chained "
                  f"{seconds:.1f} s later")
        return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="resources to create and read (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    best: dict[str, tuple[Timing, Timing]] = {}
    for _ in range(args.rounds):
        for audit in ("off", "on"):
            create, read = await measure(audit, args.n, args.concurrency)
            kept = best.get(audit)
            if kept is None or create.seconds + read.seconds < kept[0].seconds + kept[1].seconds:
                best[audit] = (create, read)
    for audit in ("off", "on"):
        for timing in best[audit]:
            print(timing.line().replace("HTTP", f"audit {audit:<3}", 1))
    (create_off, read_off), (create_on, read_on) = best["off"], best["on"]
    print(f"ratio audit on/off: create {create_on.seconds / create_off.seconds:.2f}x, "
          f"read {read_on.seconds / read_off.seconds:.2f}x, "
          f"all {(create_on.seconds + read_on.seconds) / (create_off.seconds + read_off.seconds):.2f}x "
          "(target < 1.3x)")


if __name__ == "__main__":
    asyncio.run(main())
