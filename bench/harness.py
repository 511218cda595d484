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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(url: str | None, mongodb_uri: str | None, database: str = "fhir",
                env: dict[str, str] | None = None, serve_args: tuple[str, ...] = ()) -> Iterator[Server]:
    """The server to measure: the one at `url`, or a fresh `fhir-server serve` on a temporary data dir
    (with `serve_args`, e.g. `--insecure-no-auth` for a benchmark that sends no tokens)."""
    if url:
        if not mongodb_uri:
            sys.exit("--url needs --mongodb-uri (the same database, for the driver baseline)")
        yield Server(url.rstrip("/"), mongodb_uri, database)
        return
    with tempfile.TemporaryDirectory(prefix="fhir-bench-") as data_dir:
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "fhir_server", "serve", "--port", str(port), "--data-dir", data_dir,
             *serve_args],
            env={**{k: v for k, v in os.environ.items() if k != "MONGODB_URI"}, **(env or {})},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, process)
            uri = json.loads((Path(data_dir) / "embedded.json").read_text())["uri"]
            yield Server(base, uri, database)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)


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
