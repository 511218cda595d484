"""Shared benchmark machinery: a live `fhir-server serve`, concurrent timing, and the report format."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from pymongo import AsyncMongoClient

from fhir_server.audit.collections import CHAIN, OUTBOX


@dataclass(frozen=True)
class Timing:
    """Throughput and latency percentiles of one measured phase."""

    label: str
    operations: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds

    def percentile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100)[int(q) - 1] * 1000 if len(self.latencies) > 1 else 0.0

    def line(self) -> str:
        return (f"{self.label:<28} {self.per_second:9.0f} ops/s   p50 {self.percentile(50):7.2f} ms"
                f"   p95 {self.percentile(95):7.2f} ms")


async def timed(label: str, count: int, concurrency: int, operation: Callable[[int], Awaitable[None]]) -> Timing:
    """Run `operation(i)` for i in range(count) with `concurrency` workers; time each call."""
    latencies: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            started = time.perf_counter()
            await operation(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Timing(label, count, time.perf_counter() - started, latencies)


@dataclass(frozen=True)
class Server:
    url: str
    mongodb_uri: str
    database: str
    token: str | None = None
    """A full-access bearer token (`system/*.cruds`); None for a server running --insecure-no-auth."""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def audit_caught_up(uri: str, database: str) -> tuple[int, int, float]:
    """(records waiting, events sealed, seconds) until the audit outbox is empty."""
    client: AsyncMongoClient = AsyncMongoClient(uri)
    started = time.perf_counter()
    try:
        waiting = await client[database][OUTBOX].count_documents({})
        while await client[database][OUTBOX].count_documents({}):
            await asyncio.sleep(0.1)
        return waiting, await client[database][CHAIN].count_documents({}), time.perf_counter() - started
    finally:
        await client.close()


@contextmanager
def live_server(url: str | None, mongodb_uri: str | None, database: str = "fhir",
                env: dict[str, str] | None = None, insecure: bool = False) -> Iterator[Server]:
    """The server to measure: the one at `url` (token from `FHIR_BENCH_TOKEN`), or a fresh
    `fhir-server serve` on a temporary data dir, with a Backend Services client and its token
    (or, `insecure`, with `--insecure-no-auth`)."""
    if url:
        if not mongodb_uri:
            sys.exit("--url needs --mongodb-uri (the same database, for the driver baseline)")
        yield Server(url.rstrip("/"), mongodb_uri, database, os.environ.get("FHIR_BENCH_TOKEN"))
        return
    with tempfile.TemporaryDirectory(prefix="fhir-bench-") as data_dir:
        port = _free_port()
        command = [sys.executable, "-m", "fhir_server", "serve", "--port", str(port), "--data-dir", data_dir]
        process = subprocess.Popen(
            [*command, "--insecure-no-auth"] if insecure else command,
            env={**{k: v for k, v in os.environ.items() if k != "MONGODB_URI"}, "FHIR_BACKEND_TOKEN_SECONDS": "7200",
                 **(env or {})},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, process)
            uri = json.loads((Path(data_dir) / "embedded.json").read_text())["uri"]
            yield Server(base, uri, database, None if insecure else _backend_token(base, Path(data_dir)))
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)


def _backend_token(base: str, data_dir: Path) -> str:
    """Register a Backend Services client with `fhir-server client create` and get its token."""
    key = ECKey.generate_key("P-384", parameters={"kid": "bench"}, private=True)
    jwks = data_dir / "bench-jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    subprocess.run([sys.executable, "-m", "fhir_server", "client", "create", "--client-id", "bench", "--scope",
                    "system/*.cruds", "--jwks", str(jwks), "--data-dir", str(data_dir)], check=True,
                   capture_output=True)
    token_url = f"{base}/auth/token"
    assertion = jwt.encode({"alg": "ES384", "kid": "bench"}, {
        "iss": "bench", "sub": "bench", "aud": token_url, "exp": int(time.time()) + 240, "jti": uuid.uuid4().hex},
        key, algorithms=["ES384"])
    reply = httpx.post(token_url, data={
        "grant_type": "client_credentials", "scope": "system/*.cruds", "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, timeout=60)
    reply.raise_for_status()
    return reply.json()["access_token"]


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("fhir-server serve exited during start-up")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit("fhir-server serve did not become ready")
