"""The element model FHIRPath navigation needs, read from the R4 StructureDefinitions.

For a *context* (a type name such as `HumanName`, or a backbone element path such as
`Observation.component`) `children(context)` maps each element name to an `Element`: the JSON
keys it can appear under with the FHIR type behind each key (choice elements `value[x]` give one
key per type: `valueQuantity`, `valueString`...), and whether it repeats. The path compiler
uses it to turn `Observation.effective` into lookups of `effectiveDateTime`,
`effectivePeriod`... and to know which search parameters can hold at most one value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from fhir_server.definitions import structure_definitions

_SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a context: `keys` pairs each JSON key with the context/type it leads to."""

    name: str
    keys: tuple[tuple[str, str], ...]
    many: bool
    choice: bool


def _type_code(code: str) -> str:
    return _SYSTEM_TYPES.get(code, code)


@cache
def _model() -> dict[str, dict[str, Element]]:
    model: dict[str, dict[str, Element]] = {}
    for sd in structure_definitions().values():
        if sd.get("derivation") == "constraint" or sd["kind"] not in ("resource", "complex-type"):
            continue
        elements = sd["snapshot"]["element"]
        backbone_paths = {e["path"].rsplit(".", 1)[0] for e in elements if "." in e["path"]}
        for e in elements:
            path = e["path"]
            if "." not in path:
                continue
            parent, name = path.rsplit(".", 1)
            many = e.get("max") == "*" or (e.get("max") not in ("0", "1"))
            if "contentReference" in e:
                keys: tuple[tuple[str, str], ...] = ((name, e["contentReference"].lstrip("#")),)
            elif path in backbone_paths:
                keys = ((name, path),)
            elif name.endswith("[x]"):
                name = name[:-3]
                keys = tuple((name + t["code"][0].upper() + t["code"][1:], t["code"]) for t in e["type"])
            else:
                keys = ((name, _type_code(e["type"][0]["code"])),)
            model.setdefault(parent, {})[name] = Element(name, keys, many, len(keys) > 1)
    return model


def children(context: str) -> dict[str, Element]:
    """Elements of a type or backbone path (empty for primitives and unknown contexts)."""
    return _model().get(context, {})


@cache
def base_types(type_name: str) -> tuple[str, ...]:
    """`type_name` followed by the types it specialises (`Age` -> `Age, Quantity, Element...`)."""
    chain = [type_name]
    sds = structure_definitions()
    while (sd := sds.get(chain[-1])) and (base := sd.get("baseDefinition")):
        chain.append(base.rsplit("/", 1)[-1])
    return tuple(chain)


def is_resource_type(name: str) -> bool:
    """True for resource types, including the abstract `Resource` and `DomainResource`."""
    sd = structure_definitions().get(name)
    return sd is not None and sd["kind"] == "resource" and sd.get("derivation") != "constraint"
