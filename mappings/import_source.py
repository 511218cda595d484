"""`fhir-server import --from medicalcycle FILE.json`: the MedicalCycle Cloud export as an import source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from fhir_server.importing.sources import SourceError, register_source
from mappings.export_file import bundles, read_export
from mappings.fhir import Json


@register_source("medicalcycle", patterns=("*.json",),
                 help="MedicalCycle Cloud export files (docs/migration.md): one transaction per patient")
def read_medicalcycle(path: Path) -> Iterator[Json]:
    try:
        export = read_export(path)
    except ValidationError as error:
        raise SourceError(f"not a MedicalCycle Cloud export: {error}") from error
    yield from bundles(export)
