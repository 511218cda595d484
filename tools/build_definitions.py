"""Build the trimmed R4 definition files the server ships as package data.

Reads the official `hl7.fhir.r4.examples` npm package (FHIR 4.0.1) and writes, under
`fhir_server/definitions/data/`, only what the server uses at run time:

- `structure-definitions.json.gz`: base resource, complex-type and primitive-type
  StructureDefinitions plus the core profiles (vital signs...), snapshot elements trimmed to
  the fields validation, `_summary` and profiling need (including `minValue[x]`/`maxValue[x]`,
  which carry the 32-bit range of `integer`);
- `search-parameters.json.gz`: every SearchParameter of `Bundle-searchParams.json`;
- `compartments.json.gz`: the five CompartmentDefinitions;
- `terminology.json.gz`: ValueSets and CodeSystems (for required bindings);
- `operation-definitions.json.gz`: the core OperationDefinitions.

and, under `tests/data/`, the official example resources used by the test-suite
(`r4-examples.ndjson.gz`, one resource per line, examples over 200 kB left out).

Usage: python tools/build_definitions.py [PATH-TO-UNPACKED-package/]
(without a path it runs `npm pack hl7.fhir.r4.examples` in a temporary folder).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "fhir_server" / "definitions" / "data"
TEST_DATA = ROOT / "tests" / "data"

CONFORMANCE_TYPES = {
    "SearchParameter", "ValueSet", "CodeSystem", "StructureDefinition", "ConceptMap",
    "CompartmentDefinition", "OperationDefinition", "ImplementationGuide",
    "CapabilityStatement", "NamingSystem", "StructureMap", "TerminologyCapabilities",
    "GraphDefinition", "MessageDefinition",
}
ELEMENT_KEYS = (
    "id", "path", "sliceName", "min", "max", "base", "type", "contentReference", "constraint",
    "binding", "isSummary", "isModifier", "slicing", "maxLength",
)
MAX_EXAMPLE_BYTES = 200_000
# Constrained data types that base definitions name in `type.profile`.
CORE_TYPE_PROFILES = {"SimpleQuantity", "MoneyQuantity"}


def unpack_package() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="fhir-r4-"))
    subprocess.run(["npm", "pack", "hl7.fhir.r4.examples@4.0.1"], cwd=tmp, check=True)
    archive = next(tmp.glob("*.tgz"))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "package"


def _trim_element(element: dict) -> dict:
    kept = {k: element[k] for k in ELEMENT_KEYS if k in element}
    kept.update({k: v for k, v in element.items()
                 if k.startswith(("fixed", "pattern", "minValue", "maxValue"))})
    if "constraint" in kept:
        kept["constraint"] = [
            {k: c[k] for k in ("key", "severity", "human", "expression", "source") if k in c}
            for c in kept["constraint"]
        ]
    if "binding" in kept:
        kept["binding"] = {k: kept["binding"][k] for k in ("strength", "valueSet") if k in kept["binding"]}
    if "base" in kept:
        kept["base"] = {k: kept["base"][k] for k in ("path", "min", "max")}
    return kept


def _trim_structure_definition(sd: dict) -> dict:
    kept = {
        k: sd[k]
        for k in ("resourceType", "id", "url", "version", "name", "status", "kind", "abstract",
                  "type", "baseDefinition", "derivation", "fhirVersion")
        if k in sd
    }
    kept["snapshot"] = {"element": [_trim_element(e) for e in sd["snapshot"]["element"]]}
    if "differential" in sd:
        kept["differential"] = {"element": [_trim_element(e) for e in sd["differential"]["element"]]}
    return kept


def _write_gz(path: Path, payload: object) -> None:
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    path.write_bytes(gzip.compress(raw, 9, mtime=0))
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} kB)")


def build(package: Path) -> None:
    resources = {}
    for file in sorted(package.glob("*.json")):
        if file.name == "package.json":
            continue
        data = json.loads(file.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "resourceType" in data:
            resources[file.name] = data

    structure_definitions = [
        _trim_structure_definition(r) for r in resources.values()
        if r["resourceType"] == "StructureDefinition"
        and r.get("kind") in ("resource", "complex-type", "primitive-type")
        and (r.get("derivation") != "constraint" or r.get("kind") == "resource"
             or r["id"] in CORE_TYPE_PROFILES)
    ]
    _write_gz(DATA / "structure-definitions.json.gz", structure_definitions)

    search_bundle = resources["Bundle-searchParams.json"]
    _write_gz(DATA / "search-parameters.json.gz", [e["resource"] for e in search_bundle["entry"]])

    compartments = [r for r in resources.values() if r["resourceType"] == "CompartmentDefinition"
                    and r["id"] != "example"]
    _write_gz(DATA / "compartments.json.gz", compartments)

    terminology = [r for r in resources.values() if r["resourceType"] in ("ValueSet", "CodeSystem")]
    _write_gz(DATA / "terminology.json.gz", terminology)

    operations = [r for r in resources.values() if r["resourceType"] == "OperationDefinition"]
    _write_gz(DATA / "operation-definitions.json.gz", operations)

    lines = []
    for name, resource in resources.items():
        if resource["resourceType"] in CONFORMANCE_TYPES or name == "Bundle-searchParams.json":
            continue
        if (package / name).stat().st_size > MAX_EXAMPLE_BYTES:
            continue
        lines.append(json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
    TEST_DATA.mkdir(parents=True, exist_ok=True)
    out = TEST_DATA / "r4-examples.ndjson.gz"
    out.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), 9, mtime=0))
    print(f"wrote {out.relative_to(ROOT)} ({len(lines)} examples)")

if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else unpack_package())
