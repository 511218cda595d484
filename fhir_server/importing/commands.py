"""`fhir-server import PATH... [--from FORMAT] [--url BASE [--token TOKEN]] [--jobs N] [--skip-invalid]`.

Loads Bundles and NDJSON from files or folders (see `sources`) straight into the database (the
running server's embedded one, `MONGODB_URI`, or an embedded one started for the command), or
into a running server with `--url`. Shows a progress bar with resources/s and ends with the
counts and errors per file; exit status 1 when anything failed. Safe to re-run: resources with
ids are written with PUT to that id (`sources.idempotent`). `--skip-invalid` loads a Bundle
refused for invalid resources without them (`skipping`): they are listed, not errors. A
transaction over `FHIR_MAX_TRANSACTION_BYTES` is loaded as several (`splitting`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fhir_server.cli import add_data_dir, settings_from
from fhir_server.importing.sources import SOURCE_MODULES, SOURCES, Source, SourceError, files_of, idempotent

if TYPE_CHECKING:
    from fhir_server.importing.loader import Outcome, Skipped, Target

Json = dict


@dataclass
class FileReport:
    path: Path
    bundles: int = 0
    written: int = 0
    transactions: int = 0
    """The transactions its Bundles were submitted as: one each, more for a split one."""
    errors: list[str] = field(default_factory=list)
    skipped: list[tuple[int, Skipped]] = field(default_factory=list)
    """The entries left out by `--skip-invalid`, with the number of their Bundle in the file."""

    def add(self, outcome: Outcome) -> None:
        self.bundles += 1
        self.written += outcome.written
        self.transactions += outcome.transactions
        self.errors.extend(outcome.errors)
        self.skipped.extend((self.bundles, s) for s in outcome.skipped)


def _bundles(source: Source, files: list[Path], reports: list[FileReport]) -> Iterator[tuple[FileReport, Json]]:
    for path in files:
        report = FileReport(path)
        reports.append(report)
        try:
            for bundle in source.read(path):
                yield report, idempotent(bundle)
        except (SourceError, OSError, ValueError) as error:
            report.errors.append(f"cannot read: {error}")


async def run_import(target: Target, source: Source, files: list[Path], jobs: int,
                     console: Console | None = None) -> list[FileReport]:
    """Submit every Bundle of `files` with `jobs` concurrent workers; the per-file reports."""
    reports: list[FileReport] = []
    pending = _bundles(source, files, reports)
    started = time.perf_counter()
    written = 0
    columns = (TextColumn("[bold]import"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
               TextColumn("{task.fields[resources]} resources, {task.fields[rate]:.0f}/s"), TimeElapsedColumn())
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as progress:
        task = progress.add_task("import", total=len(files), resources=0, rate=0.0)

        async def worker() -> None:
            nonlocal written
            for report, bundle in pending:
                outcome = await target.submit(bundle)
                report.add(outcome)
                written += outcome.written
                progress.update(task, completed=max(len(reports) - 1, 0), resources=written,
                                rate=written / (time.perf_counter() - started))

        await asyncio.gather(*(worker() for _ in range(jobs)))
        progress.update(task, completed=len(files), resources=written,
                        rate=written / max(time.perf_counter() - started, 1e-9))
    return reports


def print_report(reports: list[FileReport], console: Console, skipping: bool = False) -> None:
    """The per-file table, then every skipped entry (when `skipping`) and the errors (20 per file).

    The `transactions` column appears when a Bundle was split, `skipped` when `skipping`.
    """
    split = any(r.transactions > r.bundles for r in reports)
    table = Table("file", "bundles", *(["transactions"] if split else []), "resources",
                  *(["skipped"] if skipping else []), "errors")
    for report in reports:
        table.add_row(str(report.path), str(report.bundles), *([str(report.transactions)] if split else []),
                      str(report.written), *([str(len(report.skipped))] if skipping else []),
                      str(len(report.errors)))
    console.print(table)
    for report in reports:
        for bundle_number, skipped in report.skipped:
            # NDJSON files hold several Bundles (chunks): the entry index alone would be ambiguous.
            where = f"entry[{skipped.index}]"
            if report.bundles > 1:
                where = f"bundle {bundle_number} {where}"
            console.print(f"[yellow]{escape(str(report.path))}[/yellow]: skipped {where} "
                          f"{escape(skipped.what)}: {escape(skipped.reason)}", markup=True, highlight=False)
    for report in reports:
        # Escaped: diagnostics name elements such as `value[x]`, which rich would take for markup.
        for error in report.errors[:20]:
            console.print(f"[red]{escape(str(report.path))}[/red]: {escape(error)}", markup=True, highlight=False)
        if len(report.errors) > 20:
            console.print(f"[red]{escape(str(report.path))}[/red]: ... {len(report.errors) - 20} more errors")


async def _import(args: argparse.Namespace) -> int:
    # The whole server stack loads only when an import runs, not for every `fhir-server` command.
    from fhir_server.importing.loader import HttpTarget, database_target
    from fhir_server.importing.skipping import SkippingTarget
    from fhir_server.importing.splitting import SplittingTarget

    source = SOURCES[args.source]
    files = list(files_of(source, [Path(p) for p in args.paths]))
    missing = [f for f in files if not f.exists()]
    console = Console(stderr=True)
    if missing:
        console.print(f"no such file: {', '.join(map(str, missing))}")
        return 2
    settings = settings_from(args)
    context: AbstractAsyncContextManager[Target] = (
        nullcontext(HttpTarget(args.url, args.token)) if args.url else database_target(settings))
    started = time.perf_counter()
    async with context as target:
        # With --url the server's own limit is not known here: FHIR_MAX_TRANSACTION_BYTES should match it.
        target = SplittingTarget(target, settings.max_transaction_bytes)
        if args.skip_invalid:
            # Outside the splitting: dependents in other parts of a split Bundle are left out too.
            # A remote server's settings are not known here: skipping then checks the claimed profiles only.
            target = SkippingTarget(target, None if args.url else settings)
        reports = await run_import(target, source, files, args.jobs, console)
    elapsed = time.perf_counter() - started
    print_report(reports, console, args.skip_invalid)
    total = sum(r.written for r in reports)
    failed = sum(len(r.errors) for r in reports)
    skipped = f"{sum(len(r.skipped) for r in reports)} skipped, " if args.skip_invalid else ""
    console.print(f"{total} resources from {len(files)} files in {elapsed:.1f} s "
                  f"({total / max(elapsed, 1e-9):.0f} resources/s), {skipped}{failed} errors")
    # Skipped entries were asked for: they alone do not fail the import.
    return 1 if failed else 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `fhir-server import`."""
    for module in SOURCE_MODULES:
        importlib.import_module(module)
    parser = commands.add_parser("import", help="load Bundles and NDJSON files into the server")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (searched recursively)")
    parser.add_argument("--from", dest="source", choices=sorted(SOURCES), default="fhir",
                        help="source format (default fhir: " + SOURCES["fhir"].help + ")")
    parser.add_argument("--url", help="post to the server at this base URL instead of writing to the database")
    parser.add_argument("--token", help="Bearer token for --url")
    parser.add_argument("--jobs", type=int, default=1,
                        help="Bundles written concurrently (default 1: concurrent large transactions conflict)")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="load a Bundle refused for invalid resources (422) without them and the entries "
                             "referencing them; list them (exit status 0 if nothing else failed)")
    add_data_dir(parser)
    parser.set_defaults(run=lambda args: asyncio.run(_import(args)))
