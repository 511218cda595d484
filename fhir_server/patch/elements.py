"""What FHIRPath Patch needs to know about R4 elements, read from the base StructureDefinitions.

Owns the lookup of a child element by its JSON name within a type (`HumanName`) or a backbone
element (`Patient.contact`): whether it repeats, which types it takes, how a choice element
(`value[x]`) spells its JSON key for a given type, and the context its own children live in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.definitions import structure_definitions

# Types whose JSON shape is the same, so one can stand for another outside choice elements
# (where the type is part of the JSON key).
QUANTITY_TYPES = frozenset({"Quantity", "Age", "Count", "Distance", "Duration"})
_SYSTEM_TYPE_PREFIX = "http://hl7.org/fhirpath/System."
_FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"


@dataclass(frozen=True)
class Element:
    """One element definition, seen from the JSON it describes."""

    path: str  # as in the StructureDefinition: "Patient.contact", "Observation.value[x]"
    repeats: bool
    types: tuple[str, ...]  # type codes: "string", "HumanName", "BackboneElement", "Resource"...
    children: str | None  # where its child elements are defined when it has no named type of its own

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1].removesuffix("[x]")

    @property
    def is_choice(self) -> bool:
        return self.path.endswith("[x]")

    def json_key(self, type_code: str) -> str:
        """The JSON property holding a value of `type_code` (`valueQuantity` for `value[x]`)."""
        return self.name + type_code[0].upper() + type_code[1:] if self.is_choice else self.name

    def type_of_key(self, key: str) -> str:
        """The type of the value held under `key`, one of this element's JSON keys."""
        return next(code for code in self.types if self.json_key(code) == key)

    def present_key(self, owner: dict[str, Any]) -> str | None:
        """The key this element has in the JSON object `owner`, whichever type a choice holds."""
        keys = dict.fromkeys(self.json_key(code) for code in self.types)
        return next((key for key in keys if key in owner or "_" + key in owner), None)

    def context(self, type_code: str) -> str:
        """Where the children of a value of `type_code` held by this element are defined."""
        return self.children or type_code

    def accepts(self, type_code: str) -> bool:
        """Whether a value of `type_code` can be put here.

        Primitives are interchangeable outside choice elements: their JSON is a string, number or
        boolean whatever the exact type, and clients routinely send `valueString` for a `code`
        or an `xhtml` element (the official test cases do).
        """
        if self.is_choice:
            return type_code in self.types
        if "Resource" in self.types:
            return is_resource(type_code)
        if all(is_primitive(code) for code in self.types):
            return is_primitive(type_code)
        return type_code in self.types or (
            type_code in QUANTITY_TYPES and any(code in QUANTITY_TYPES for code in self.types)
        )


def child(context: str, key: str) -> tuple[Element, str | None] | None:
    """The element `key` names within `context` (a type code or a backbone element path).

    `key` is a JSON property name or, for choice elements, either the full key (`valueQuantity`)
    or the bare name (`value`). Returns the element and the type the key implies (None for a bare
    choice name), or None when `context` has no such element.
    """
    elements = _elements(context.split(".", 1)[0])
    if is_primitive(context) and key == "value":
        return None  # a primitive's value is the JSON value itself, not a property
    element = elements.get(f"{context}.{key}")
    if element is not None:
        return element, element.types[0]
    for choice in _choices(context.split(".", 1)[0]).get(context, ()):
        if key == choice.name:
            return choice, None
        if key.startswith(choice.name):
            type_code = type_for_suffix(key[len(choice.name) :])
            if type_code in choice.types:
                return choice, type_code
    return None


def type_for_suffix(suffix: str) -> str | None:
    """The type code a `value[x]`-style suffix names (`DateTime` -> `dateTime`), if it is a type."""
    for code in (suffix, suffix[:1].lower() + suffix[1:]):
        definition = _base_definition(code)
        if definition is not None and definition["kind"] in ("primitive-type", "complex-type"):
            return code
    return None


def is_primitive(type_code: str) -> bool:
    definition = _base_definition(type_code)
    return definition is not None and definition["kind"] == "primitive-type"


def is_resource(type_code: str) -> bool:
    definition = _base_definition(type_code)
    return definition is not None and definition["kind"] == "resource"


def _base_definition(type_code: str) -> dict[str, Any] | None:
    # Profiles (SimpleQuantity, vitalsigns...) share the list but never name a JSON type.
    definition = structure_definitions().get(type_code)
    return definition if definition is not None and definition["type"] == type_code else None


@cache
def _elements(type_code: str) -> dict[str, Element]:
    definition = _base_definition(type_code)
    if definition is None:
        return {}
    raw = {item["path"]: item for item in definition["snapshot"]["element"]}
    elements: dict[str, Element] = {}
    for path, item in raw.items():
        if "." not in path:
            continue
        # An element defined elsewhere (`Questionnaire.item.item`) takes that element's children;
        # an anonymous type (BackboneElement, Element) has its children right below it.
        reference = item.get("contentReference", "").removeprefix("#")
        children = reference or (path if any(other.startswith(path + ".") for other in raw) else None)
        elements[path] = Element(
            path=path,
            repeats=item["max"] != "1",
            types=tuple(_type_code(entry) for entry in raw[reference or path].get("type", ())),
            children=children,
        )
    return elements


@cache
def _choices(type_code: str) -> dict[str, tuple[Element, ...]]:
    by_parent: dict[str, list[Element]] = {}
    for element in _elements(type_code).values():
        if element.is_choice:
            by_parent.setdefault(element.path.rsplit(".", 1)[0], []).append(element)
    return {parent: tuple(elements) for parent, elements in by_parent.items()}


def _type_code(entry: dict[str, Any]) -> str:
    code: str = entry["code"]
    if not code.startswith(_SYSTEM_TYPE_PREFIX):
        return code
    for extension in entry.get("extension", ()):
        if extension.get("url") == _FHIR_TYPE_EXTENSION:
            return str(extension["valueUrl"])
    name = code.removeprefix(_SYSTEM_TYPE_PREFIX)
    return name[:1].lower() + name[1:]
