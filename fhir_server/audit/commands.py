"""`fhir-server audit verify | export | prune`: the audit trail from the command line.

    fhir-server audit verify [--since INSTANT] [--until INSTANT]       exit 0 intact, 1 broken
    fhir-server audit export --since INSTANT --until INSTANT --format ndjson|csv [--output FILE]
    fhir-server audit prune [--before INSTANT]     default: FHIR_AUDIT_RETENTION_DAYS ago
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timedelta
from typing import TextIO

from fhir_server.audit.export import CSV_COLUMNS, csv_row, csv_text, events_between, ndjson_line
from fhir_server.audit.retention import prune
from fhir_server.audit.verify import verify_chain
from fhir_server.cli import add_data_dir, settings_from
from fhir_server.fhir.primitives import date_time_range, now
from fhir_server.storage.operator import open_database


def _instant(edge: int) -> type:
    """An argparse type for a FHIR date/dateTime/instant: its range start (0) or end (1)."""

    def parse(value: str) -> datetime:
        period = date_time_range(value)
        if period is None:
            raise argparse.ArgumentTypeError(f"'{value}' is not a FHIR date, dateTime or instant")
        return period[edge]

    return parse


async def _verify(args: argparse.Namespace) -> int:
    async with open_database(settings_from(args)) as database:
        result = await verify_chain(database, args.since, args.until)
    span = f"#{result.first}..#{result.last}" if result.first else "no events"
    if result.intact:
        print(f"audit chain intact: {result.checked} events checked ({span})")
        return 0
    print(f"audit chain BROKEN: {result.problem} (after {result.checked} intact events)", file=sys.stderr)
    return 1


async def _export(args: argparse.Namespace) -> int:
    output: TextIO = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: SIM115
    count = 0
    try:
        if args.format == "csv":
            output.write(csv_text(CSV_COLUMNS))
        async with open_database(settings_from(args)) as database:
            async for sequence, event in events_between(database, args.since, args.until):
                output.write(csv_text(csv_row(sequence, event)) if args.format == "csv"
                             else ndjson_line(event).decode())
                count += 1
    finally:
        if args.output:
            output.close()
    print(f"exported {count} AuditEvents", file=sys.stderr)
    return 0


async def _prune(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    before = args.before
    if before is None:
        if settings.audit_retention_days is None:
            print("nothing to do: give --before or set FHIR_AUDIT_RETENTION_DAYS", file=sys.stderr)
            return 2
        before = now() - timedelta(days=settings.audit_retention_days)
    async with open_database(settings) as database:
        removed = await prune(database, before)
    print(f"pruned {removed} AuditEvents recorded before {before.isoformat()}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `fhir-server audit ...`."""
    audit = commands.add_parser("audit", help="verify, export or prune the audit trail")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = actions.add_parser("verify", help="check the hash chain; exit 1 at the first broken link")
    verify.add_argument("--since", type=_instant(0))
    verify.add_argument("--until", type=_instant(1))
    export = actions.add_parser("export", help="write AuditEvents as NDJSON or CSV")
    export.add_argument("--since", type=_instant(0), required=True)
    export.add_argument("--until", type=_instant(1), required=True)
    export.add_argument("--format", choices=("ndjson", "csv"), default="ndjson")
    export.add_argument("--output", help="file to write (default: standard output)")
    pruning = actions.add_parser("prune", help="remove AuditEvents older than the retention period")
    pruning.add_argument("--before", type=_instant(0))
    for parser, action in ((verify, _verify), (export, _export), (pruning, _prune)):
        add_data_dir(parser)
        parser.set_defaults(run=lambda args, action=action: asyncio.run(action(args)))
