"""Test harness: a real database and the real app behind a live uvicorn, talked to over HTTP.

The embedded SecantusDB is started once per session (in memory), unless `MONGODB_URI` names a
MongoDB to use instead. Each server gets its own database name, so tests never see stale data.
The API is closed: each server gets a Backend Services client registered through the real code,
and `server.auth` (an `httpx.Auth`) carries its real `client_credentials` tokens with full access.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from pymongo import MongoClient

from fhir_server.app import create_app
from fhir_server.config import Settings
from fhir_server.storage.embedded import MEMORY, EmbeddedDatabase
from tests.smart import BackendAuth, register_backend_client

DATA = Path(__file__).parent / "data"
FHIR_JSON = "application/fhir+json"


@dataclass
class LiveServer:
    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread
    auth: BackendAuth | None = None
    """Full-access tokens (`tests.smart.FULL_ACCESS`) for this server."""

    def headers(self, **extra: str) -> dict[str, str]:
        """A full-access Authorization header (plus `extra`) for plain httpx calls."""
        return {**(self.auth.headers() if self.auth else {}), **extra}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_live_server(settings: Settings) -> LiveServer:
    """Run `create_app(settings)` under uvicorn in a thread until it accepts requests."""
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", loop="asyncio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    live = LiveServer(f"http://127.0.0.1:{port}", settings, server, thread)
    if settings.auth_enabled:
        client_id, key = register_backend_client(settings)
        live.auth = BackendAuth(live.url, client_id, key)
    return live


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    external = os.environ.get("MONGODB_URI")
    if external:
        yield external
        return
    with EmbeddedDatabase(MEMORY) as uri:
        yield uri


@pytest.fixture(scope="session")
def mongo(mongodb_uri: str) -> Iterator[MongoClient]:
    """A synchronous driver client on the test database, for checking what the server stored."""
    client: MongoClient = MongoClient(mongodb_uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def make_server(mongodb_uri: str) -> Iterator[Callable[..., LiveServer]]:
    """Start extra live servers with settings overrides; all are stopped at the end of the session."""
    servers: list[LiveServer] = []

    def make(**overrides: object) -> LiveServer:
        settings = Settings(mongodb_uri=mongodb_uri, database_name=f"fhir_test_{uuid.uuid4().hex[:10]}",
                            **overrides)
        servers.append(start_live_server(settings))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def server(make_server: Callable[..., LiveServer]) -> LiveServer:
    """The shared server most tests use."""
    return make_server()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Accept": FHIR_JSON}, auth=server.auth, timeout=60) as http:
        yield http


@pytest.fixture(scope="session")
def official_examples() -> list[dict]:
    """The official R4 example resources (hl7.fhir.r4.examples 4.0.1) kept under tests/data."""
    with gzip.open(DATA / "r4-examples.ndjson.gz", "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
