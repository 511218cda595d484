"""`fhir-server serve` as an operator runs it: embedded database, readiness, persistence, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from tests.fhir_data import fhir_headers, patient


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(data_dir: Path, port: int, log: Path, **settings: str) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if k != "MONGODB_URI"}, **settings}
    # Authentication is not what these tests are about (tests/test_auth_cli.py runs serve with it).
    return subprocess.Popen([sys.executable, "-m", "fhir_server", "serve", "--port", str(port), "--insecure-no-auth",
                             "--data-dir", str(data_dir)], stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, "fhir-server serve exited early"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("fhir-server serve did not become ready")


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0


def test_serve_uses_embedded_database_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "serve.log", _free_port()
    url = f"http://127.0.0.1:{port}"
    process = _serve(data_dir, port, log)
    try:
        _wait_ready(url, process)
        created = httpx.post(f"{url}/Patient", json=patient(), headers=fhir_headers()).json()
        assert (data_dir / "embedded.json").exists()
    finally:
        _stop(process)
    assert "embedded SecantusDB" in log.read_text()
    assert not (data_dir / "embedded.json").exists()

    process = _serve(data_dir, port, log)
    try:
        _wait_ready(url, process)
        assert httpx.get(f"{url}/Patient/{created['id']}").json() == created
    finally:
        _stop(process)


def test_second_server_on_same_data_dir_is_refused(tmp_path: Path) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "serve.log", _free_port()
    first = _serve(data_dir, port, log)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", first)
        second = _serve(data_dir, _free_port(), tmp_path / "second.log")
        assert second.wait(timeout=60) == 1
        assert "already served" in (tmp_path / "second.log").read_text()
    finally:
        _stop(first)


def test_embedded_database_cache_size_is_configurable(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", _free_port()
    process = _serve(data_dir, port, tmp_path / "serve.log", FHIR_EMBEDDED_CACHE_MB="256")
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process)
        database_pid = orjson.loads((data_dir / "embedded.json").read_bytes())["pid"]
        arguments = Path(f"/proc/{database_pid}/cmdline").read_bytes().split(b"\0")
    finally:
        _stop(process)
    assert arguments[arguments.index(b"--cache-size") + 1] == b"256M"
