"""Cost of authorization: the CRUD workload with bearer tokens vs the same server with --insecure-no-auth.

    python -m bench.auth [-n 2000] [--concurrency 16]

Each phase starts its own `fhir-server serve` (the token-checking one with a Backend Services
client and a `system/*.cruds` token). The last line is the with-token/without ratio of elapsed
time for creates and reads (verification is cached per token, so the ratio should stay near 1).
"""

from __future__ import annotations

import argparse
import asyncio

from bench.crud import http_phase
from bench.harness import Timing, live_server


async def measure(insecure: bool, n: int, concurrency: int) -> tuple[Timing, Timing]:
    with live_server(None, None, insecure=insecure) as server:
        await http_phase(server.url, min(n, 200), concurrency, server.auth)  # warm-up
        return await http_phase(server.url, n, concurrency, server.auth)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="resources to create and read (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    open_create, open_read = await measure(True, args.n, args.concurrency)
    auth_create, auth_read = await measure(False, args.n, args.concurrency)
    for label, timing in (("no auth", open_create), ("no auth", open_read), ("token", auth_create),
                          ("token", auth_read)):
        print(f"{label:<8} {timing.line()}")
    print(f"ratio token/no-auth: create {auth_create.seconds / open_create.seconds:.2f}x, "
          f"read {auth_read.seconds / open_read.seconds:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
