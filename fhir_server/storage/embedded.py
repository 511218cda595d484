"""The embedded database: a SecantusDB server run as a child process.

Used when `MONGODB_URI` is not set. The server listens on a free loopback port, keeps its files
in `<data-dir>/db` and always runs with `--sync-on-commit` (without it, committed transactions
were lost when the process was killed) and `--standalone`, without the replica-set oplog, which
only change streams read (we use none). With the oplog, a transaction also buffers a full copy of
every document it writes until it commits; an 8,957-entry Synthea transaction then filled
WiredTiger's cache with uncommitted pages and its commit stalled for over 30 minutes. Without it
that transaction commits; transactions otherwise work the same (docs/bundles.md, Figures).
Its cache is `FHIR_EMBEDDED_CACHE_MB` (1 GiB by default, SecantusDB's own default).
Its address is recorded in `<data-dir>/embedded.json` so that operator commands (`fhir-server
import`, `user create`...) can reach the database while `fhir-server serve` owns it: the data
directory can be opened by one process only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

ADDRESS_FILE = "embedded.json"
MEMORY = ":memory:"


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database could not be started or reached."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reachable(uri: str, timeout_ms: int = 1000) -> bool:
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedDatabase:
    """A SecantusDB child process owning `data_dir` (or an in-memory store for tests)."""

    def __init__(self, data_dir: Path | str, startup_timeout: float = 60.0, cache_mb: int = 1024) -> None:
        self.data_dir = data_dir if data_dir == MEMORY else Path(data_dir).resolve()
        self.cache_mb = cache_mb
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.uri: str | None = None

    @property
    def _address_file(self) -> Path | None:
        return None if self.data_dir == MEMORY else Path(self.data_dir) / ADDRESS_FILE

    def start(self) -> str:
        """Start the server, wait until it answers, and return its connection URI."""
        if self._address_file is not None:
            running = running_address(Path(self.data_dir))
            if running:
                raise EmbeddedDatabaseError(
                    f"the data directory {self.data_dir} is already served by another process "
                    f"({running}); stop it or choose another --data-dir")
            (Path(self.data_dir) / "db").mkdir(parents=True, exist_ok=True)
        storage = MEMORY if self.data_dir == MEMORY else str(Path(self.data_dir) / "db")
        log_path = (Path(self.data_dir) / "secantus.log") if self._address_file else None
        port = _free_port()
        command = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
                   "--storage-path", storage, "--sync-on-commit", "--standalone", "--log-level", "WARNING",
                   "--cache-size", f"{self.cache_mb}M"]
        output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            # Own process group, so a Ctrl-C in the terminal reaches the server first and the
            # database is then stopped cleanly by us, not killed mid-commit.
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            if log_path:
                output.close()
        uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        deadline = time.monotonic() + self.startup_timeout
        while not _reachable(uri, 500):
            if self.process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"SecantusDB exited with code {self.process.returncode} during start-up"
                    + (f"; see {log_path}" if log_path else ""))
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedDatabaseError(f"SecantusDB did not answer within {self.startup_timeout:.0f} s")
            time.sleep(0.1)
        self.uri = uri
        if self._address_file is not None:
            self._address_file.write_text(json.dumps({"uri": uri, "pid": self.process.pid}))
        log.info("embedded SecantusDB %s listening at %s (data in %s)",
                 _version(), uri, self.data_dir)
        return uri

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 20 s) and forget its address."""
        if self._address_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self._address_file.unlink()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.info("embedded SecantusDB stopped")

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def running_address(data_dir: Path) -> str | None:
    """The URI of an embedded database already serving `data_dir`, if one answers."""
    path = Path(data_dir) / ADDRESS_FILE
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if _pid_alive(int(info.get("pid", 0))) and _reachable(info["uri"]):
        return info["uri"]
    return None


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the server process dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("secantusdb")
    except PackageNotFoundError:
        return "(unknown version)"
