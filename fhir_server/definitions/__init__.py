"""The official FHIR R4 (4.0.1) definitions the server is driven by.

Owns the trimmed copies of the `hl7.fhir.r4.examples` package shipped under `data/` (built by
`tools/build_definitions.py`): StructureDefinitions, SearchParameters, CompartmentDefinitions,
ValueSets/CodeSystems and OperationDefinitions. Each set is loaded once, on first use.
"""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources
from typing import Any

import orjson

Json = dict[str, Any]


def _load(name: str) -> list[Json]:
    raw = resources.files(__package__).joinpath("data", name).read_bytes()
    return orjson.loads(gzip.decompress(raw))


@cache
def structure_definitions() -> dict[str, Json]:
    """Base and core-profile StructureDefinitions, keyed by id (`Patient`, `HumanName`, `vitalsigns`...)."""
    return {sd["id"]: sd for sd in _load("structure-definitions.json.gz")}


@cache
def structure_definitions_by_url() -> dict[str, Json]:
    """The same StructureDefinitions keyed by canonical URL."""
    return {sd["url"]: sd for sd in structure_definitions().values()}


@cache
def resource_types() -> tuple[str, ...]:
    """Every concrete R4 resource type name, sorted."""
    return tuple(sorted(
        sd["type"] for sd in structure_definitions().values()
        if sd["kind"] == "resource" and sd.get("derivation") == "specialization" and not sd.get("abstract")
    ))


@cache
def search_parameters() -> list[Json]:
    """All 1,375 R4 SearchParameter resources."""
    return _load("search-parameters.json.gz")


@cache
def compartment_definitions() -> dict[str, Json]:
    """The R4 CompartmentDefinitions keyed by compartment code (`Patient`, `Encounter`...)."""
    return {cd["code"]: cd for cd in _load("compartments.json.gz")}


@cache
def terminology() -> dict[str, Json]:
    """R4 ValueSets and CodeSystems keyed by canonical URL."""
    return {r["url"]: r for r in _load("terminology.json.gz")}


@cache
def operation_definitions() -> dict[str, Json]:
    """R4 OperationDefinitions keyed by id."""
    return {od["id"]: od for od in _load("operation-definitions.json.gz")}
