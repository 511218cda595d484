"""Source formats of `fhir-server import --from FORMAT`: each turns a file into transaction Bundles.

A source is registered under a name with the file-name patterns it reads from folders:

    @register_source("medicalcycle", patterns=("*.xml",), help="MedicalCycle exports")
    def read_medicalcycle(path: Path) -> Iterable[Json]: ...   # yields transaction Bundles

Modules registering formats are listed in `SOURCE_MODULES`. The importer makes every Bundle a
source yields idempotent (entries whose resource has an id are written with PUT to that id) and
performs it as one transaction (several when it is over `FHIR_MAX_TRANSACTION_BYTES`:
`splitting`). `fhir` is the default: FHIR JSON Bundles (transaction, batch, collection...) and
single resources, and NDJSON (one resource a line).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_server.fhir import json as fhir_json

Json = dict[str, Any]
Reader = Callable[[Path], Iterable[Json]]

# NDJSON lines become transactions of this many resources: large enough to amortise a commit,
# small enough that one bad line rejects little.
NDJSON_CHUNK = 200


class SourceError(Exception):
    """A file the source cannot read (not JSON, not FHIR...); reported per file by the importer."""


@dataclass(frozen=True)
class Source:
    """A source format: `read(path)` yields transaction Bundles; `patterns` select files in folders."""

    name: str
    read: Reader
    patterns: tuple[str, ...]
    help: str

    def accepts(self, path: Path) -> bool:
        return any(fnmatch.fnmatch(path.name, pattern) for pattern in self.patterns)


SOURCES: dict[str, Source] = {}
# Modules registering further source formats; `fhir-server import` imports them before parsing `--from`.
SOURCE_MODULES: list[str] = ["mappings.import_source"]


def register_source(name: str, *, patterns: tuple[str, ...], help: str) -> Callable[[Reader], Reader]:
    """Register the decorated reader as the source format `name` (the value of `--from`)."""

    def register(read: Reader) -> Reader:
        SOURCES[name] = Source(name, read, patterns, help)
        return read

    return register


def idempotent(bundle: Json) -> Json:
    """`bundle` with creates of resources that carry an id turned into PUTs to that id (in place).

    Running an import twice then leaves one resource per id (a new version, the same content).
    The entry's fullUrl keeps naming it, so references between the entries still resolve.
    """
    for entry in bundle.get("entry") or []:
        request, resource = entry.get("request") or {}, entry.get("resource")
        if (request.get("method") == "POST" and isinstance(resource, dict) and resource.get("id")
                and request.get("url") == resource.get("resourceType") and not request.get("ifNoneExist")):
            entry["request"] = {**request, "method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    return bundle


def files_of(source: Source, paths: Iterable[Path]) -> Iterator[Path]:
    """The files named, and in named folders (recursively, sorted) those the source accepts."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and source.accepts(p))
        else:
            yield path


def transaction_of(resources: list[Json]) -> Json:
    """A transaction Bundle writing `resources` (the importer decides POST or PUT per entry)."""
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "POST", "url": r.get("resourceType", "")}}
                      for r in resources]}


@register_source("fhir", patterns=("*.json", "*.ndjson"),
                 help="FHIR R4 JSON: Bundles or single resources (.json), NDJSON resources (.ndjson)")
def read_fhir(path: Path) -> Iterator[Json]:
    if path.suffix == ".ndjson":
        yield from _ndjson(path)
        return
    try:
        document = fhir_json.loads(path.read_bytes())
    except fhir_json.JSONError as error:
        raise SourceError(f"not JSON: {error}") from error
    if not isinstance(document, dict) or "resourceType" not in document:
        raise SourceError("not a FHIR resource (no resourceType)")
    if document["resourceType"] == "Bundle" and document.get("type") in ("transaction", "batch"):
        yield document
    elif document["resourceType"] == "Bundle" and document.get("type") == "collection":
        yield transaction_of([e["resource"] for e in document.get("entry", []) if "resource" in e])
    else:
        yield transaction_of([document])


def _ndjson(path: Path) -> Iterator[Json]:
    chunk: list[Json] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                chunk.append(fhir_json.loads(line))
            except fhir_json.JSONError as error:
                raise SourceError(f"line {number} is not JSON: {error}") from error
            if len(chunk) == NDJSON_CHUNK:
                yield transaction_of(chunk)
                chunk = []
    if chunk:
        yield transaction_of(chunk)
