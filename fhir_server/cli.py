"""The `fhir-server` command: `serve` and the operator commands.

`fhir-server serve [--host 127.0.0.1] [--port 8080] [--data-dir ./fhir-data]` runs the server;
without `MONGODB_URI` it first starts the embedded SecantusDB and stops it on exit.
Operator commands come from the modules in `COMMAND_MODULES`, each exposing
`add_commands(subparsers)`; they reach the database through `storage.operator.open_database`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from fhir_server.config import Settings

log = logging.getLogger("fhir_server")

# Modules contributing operator sub-commands (each has `add_commands(subparsers)`).
COMMAND_MODULES: list[str] = ["fhir_server.audit.commands", "fhir_server.auth.commands",
                               "fhir_server.importing.commands"]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with `--data-dir` (every command takes it) winning."""
    data_dir = getattr(args, "data_dir", None)
    return Settings.from_env(**({"data_dir": Path(data_dir)} if data_dir else {}))


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="embedded database directory (default ./fhir-data, env FHIR_DATA_DIR)")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fhir_server.app import create_app
    from fhir_server.storage.embedded import EmbeddedDatabase, EmbeddedDatabaseError

    settings = settings_from(args)
    if args.insecure_no_auth:
        if args.host not in LOOPBACK_HOSTS:
            log.error("--insecure-no-auth refuses to listen on %s: only on a loopback address", args.host)
            return 2
        log.warning("!" * 78)
        log.warning("--insecure-no-auth: NO AUTHENTICATION, every request may read and change every record.")
        log.warning("For local experiments only; never with real patient data.")
        log.warning("!" * 78)
        settings = replace(settings, auth_enabled=False)
    embedded = None
    if settings.mongodb_uri:
        log.info("using the MongoDB named by MONGODB_URI")
    else:
        log.info("MONGODB_URI is not set: starting the embedded SecantusDB database in %s", settings.data_dir)
        embedded = EmbeddedDatabase(settings.data_dir, cache_mb=settings.embedded_cache_mb)
        try:
            settings = replace(settings, mongodb_uri=embedded.start())
        except EmbeddedDatabaseError as error:
            log.error("%s", error)
            return 1
    try:
        # The asyncio loop, not uvloop: under uvloop PyMongo's async requests that send several
        # commands (every write) were measured ~3x slower (11 ms vs 3.8 ms per create).
        uvicorn.run(create_app(settings), host=args.host, port=args.port, loop="asyncio",
                    proxy_headers=True, log_config=None, access_log=False)
    finally:
        if embedded:
            embedded.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhir-server", description="MedicalCycle FHIR R4 server")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the FHIR server")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument("--insecure-no-auth", action="store_true",
                       help="serve the FHIR API without authentication (local experiments only; loopback only)")
    add_data_dir(serve)
    serve.set_defaults(run=_serve)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fhir-server` console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.run(args)
