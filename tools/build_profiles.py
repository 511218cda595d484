"""Generate the snapshots of the clinic's profiles and the ImplementationGuide index.

Each `profiles/StructureDefinition-*.json` holds a hand-written `differential`; this tool
rewrites its `snapshot` from the official R4 base snapshots (the `hl7.fhir.r4.examples` npm
package, FHIR 4.0.1) and writes `profiles/ImplementationGuide.json`, which lists them and the
hand-written `profiles/OperationDefinition-*.json`. Re-running it gives the same files.

Snapshot generation (hl7.org/fhir/R4/profiling.html#snapshot): the base snapshot is copied, then
each differential element is merged into the element with the same id (constraints are added to
the base's, every other key replaces the base's). An id the base does not have is created first:
the children of a data-type element (`MedicationRequest.dispenseRequest.validityPeriod.end`) by
expanding that element's type from the type's own snapshot (or its type profile's, such as
SimpleQuantity); a slice (`Patient.identifier:mrn`) as a copy of the sliced element and its
children, placed after the element's other slices. Snapshot elements keep the keys validation and
readers need (texts, cardinality, types, constraints, bindings, fixed/pattern values, slicing);
mappings, comments and examples are left out to keep the shipped files small.

Usage: python tools/build_profiles.py [PATH-TO-UNPACKED-package/]
(without a path it runs `npm pack hl7.fhir.r4.examples` in a temporary folder).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from build_definitions import unpack_package

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "profiles"
CORE = "http://hl7.org/fhir/StructureDefinition/"
IG_URL = "https://medicalcycle.example/fhir/ImplementationGuide/medicalcycle"
SNAPSHOT_KEYS = (
    "id", "path", "sliceName", "short", "definition", "min", "max", "base", "contentReference", "type",
    "condition", "constraint", "mustSupport", "isModifier", "isModifierReason", "isSummary", "binding",
    "slicing", "maxLength",
)
VALUE_PREFIXES = ("fixed", "pattern", "minValue", "maxValue")

Json = dict


def trim_element(element: Json) -> Json:
    kept = {k: element[k] for k in SNAPSHOT_KEYS if k in element}
    kept.update({k: v for k, v in element.items() if k.startswith(VALUE_PREFIXES)})
    if "constraint" in kept:
        kept["constraint"] = [{k: c[k] for k in ("key", "severity", "human", "expression", "source") if k in c}
                              for c in kept["constraint"]]
    if "binding" in kept:
        kept["binding"] = {k: v for k, v in kept["binding"].items() if k != "extension"}
    return kept


class SnapshotBuilder:
    """Builds one profile's snapshot from the base definitions keyed by canonical URL."""

    def __init__(self, definitions: dict[str, Json]) -> None:
        self.definitions = definitions

    def snapshot(self, profile: Json) -> list[Json]:
        base = self.definitions[profile["baseDefinition"]]
        elements = [trim_element(e) for e in base["snapshot"]["element"]]
        for diff in profile["differential"]["element"]:
            i = self._ensure(elements, diff["id"])
            elements[i] = _merge(elements[i], diff)
        return elements

    def _ensure(self, elements: list[Json], element_id: str) -> int:
        """The index of `element_id`, creating the element (and those it needs) if absent."""
        found = _index(elements, element_id)
        if found is not None:
            return found
        parent_id, _, last = element_id.rpartition(".")
        name, _, slice_name = last.partition(":")
        if slice_name:
            return self._add_slice(elements, f"{parent_id}.{name}", slice_name)
        parent = self._ensure(elements, parent_id)
        if not any(e["id"].startswith(parent_id + ".") for e in elements):
            self._expand_type(elements, parent)
        found = _index(elements, element_id)
        if found is None:
            raise ValueError(f"{element_id}: no such element in the base definition")
        return found

    def _add_slice(self, elements: list[Json], sliced_id: str, slice_name: str) -> int:
        start = self._ensure(elements, sliced_id)
        own_end = _end(elements, start, (sliced_id + ".",))
        copies = [copy.deepcopy(e) for e in elements[start:own_end]]
        slice_id = f"{sliced_id}:{slice_name}"
        for element in copies:
            element["id"] = slice_id + element["id"][len(sliced_id):]
        copies[0]["sliceName"] = slice_name
        copies[0].pop("slicing", None)
        at = _end(elements, start, (sliced_id + ".", sliced_id + ":"))
        elements[at:at] = copies
        return at

    def _expand_type(self, elements: list[Json], at: int) -> None:
        parent = elements[at]
        types = parent.get("type", [])
        if len(types) != 1:
            raise ValueError(f"{parent['id']}: constrain the children of an element with exactly one type")
        type_url = (types[0].get("profile") or [CORE + types[0]["code"]])[0]
        type_definition = self.definitions[type_url]
        root = type_definition["snapshot"]["element"][0]["path"]
        children = []
        for child in type_definition["snapshot"]["element"][1:]:
            child = trim_element(child)
            child["id"] = parent["id"] + child["id"][len(root):]
            child["path"] = parent["path"] + child["path"][len(root):]
            children.append(child)
        elements[at + 1:at + 1] = children


def _index(elements: list[Json], element_id: str) -> int | None:
    return next((i for i, e in enumerate(elements) if e["id"] == element_id), None)


def _end(elements: list[Json], start: int, prefixes: tuple[str, ...]) -> int:
    """The index after `elements[start]` and the elements following it whose ids start with `prefixes`."""
    end = start + 1
    while end < len(elements) and elements[end]["id"].startswith(prefixes):
        end += 1
    return end


def _merge(base: Json, diff: Json) -> Json:
    merged = dict(base)
    for key, value in diff.items():
        merged[key] = base.get(key, []) + value if key == "constraint" else value
    return merged


def implementation_guide(profiles: list[Json], operations: list[Json]) -> Json:
    """The ImplementationGuide index of `profiles` and `operations` (OperationDefinitions)."""
    return {
        "resourceType": "ImplementationGuide",
        "id": "medicalcycle",
        "url": IG_URL,
        "version": "0.1.0",
        "name": "MedicalCycle",
        "title": "MedicalCycle clinic profiles and operations",
        "status": "active",
        "publisher": "MedicalCycle",
        "description": "The profiles MedicalCycle FHIR ships for the clinic's practitioners, patients, "
                       "consultations and prescriptions, and the definitions of its own operations.",
        "packageId": "example.medicalcycle.fhir",
        "license": "Apache-2.0",
        "fhirVersion": ["4.0.1"],
        "definition": {"resource": [
            {"reference": {"reference": f"StructureDefinition/{p['id']}"}, "name": p["title"],
             "description": p["description"], "exampleBoolean": False}
            for p in profiles
        ] + [
            {"reference": {"reference": f"OperationDefinition/{o['id']}"}, "name": o["title"],
             "description": o["description"], "exampleBoolean": False}
            for o in operations
        ]},
    }


def _write_json(path: Path, resource: Json) -> None:
    path.write_text(json.dumps(resource, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} kB)")


def build(package: Path) -> None:
    definitions = {}
    for file in package.glob("StructureDefinition-*.json"):
        sd = json.loads(file.read_text(encoding="utf-8"))
        definitions[sd["url"]] = sd
    builder = SnapshotBuilder(definitions)
    profiles = []
    for file in sorted(PROFILES.glob("StructureDefinition-*.json")):
        profile = json.loads(file.read_text(encoding="utf-8"))
        profile.pop("snapshot", None)
        profile["snapshot"] = {"element": builder.snapshot(profile)}
        _write_json(file, profile)
        profiles.append(profile)
    operations = [json.loads(file.read_text(encoding="utf-8"))
                  for file in sorted(PROFILES.glob("OperationDefinition-*.json"))]
    _write_json(PROFILES / "ImplementationGuide.json", implementation_guide(profiles, operations))


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else unpack_package())
