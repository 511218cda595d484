"""StructureDefinition snapshots compiled into element trees, for the profile validator.

Owns the StructureDefinitions the validator knows by canonical URL (the shipped R4 base and core
definitions, and the clinic's profiles of the `profiles` package) and their compiled form: a
`Definition` is the tree of `ElementNode`s of one snapshot, built from the element ids
(`Patient.identifier:mrn.system` is the `system` child of the `mrn` slice of
`Patient.identifier`). An element whose children the snapshot does not list takes them from its
type's definition (or the type's profile, such as SimpleQuantity), or from the element a
`contentReference` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import profiles
from fhir_server.definitions import structure_definitions, structure_definitions_by_url

Json = dict[str, Any]

CORE = "http://hl7.org/fhir/StructureDefinition/"
SYSTEM_TYPE_PREFIX = "http://hl7.org/fhirpath/System."
# Type codes whose elements list their children inline (backbone elements).
INLINE_TYPES = frozenset({"BackboneElement", "Element"})


@dataclass(eq=False)
class ElementNode:
    """One snapshot element, with its child elements and its slices."""

    element: Json = field(repr=False)
    definition: Definition = field(repr=False)
    name: str                        # JSON name without "[x]", e.g. "value"
    choice: bool
    children: dict[str, ElementNode] = field(default_factory=dict, repr=False)
    slices: list[ElementNode] = field(default_factory=list, repr=False)
    _constraints: dict[str, list[Json]] = field(default_factory=dict, repr=False)

    @property
    def path(self) -> str:
        return self.element["path"]

    @property
    def min(self) -> int:
        return self.element.get("min", 0)

    @property
    def max(self) -> int | None:
        maximum = self.element.get("max", "*")
        return None if maximum == "*" else int(maximum)

    @property
    def types(self) -> list[Json]:
        return self.element.get("type", [])

    def type_entry(self, code: str) -> Json | None:
        return next((t for t in self.types if type_code(t["code"]) == code), None)

    def child_nodes(self, code: str) -> dict[str, ElementNode]:
        """The children of a value of type `code` at this element."""
        if self.children:
            return self.children
        reference = self.element.get("contentReference")
        if reference:
            return self.definition.nodes[reference.removeprefix("#")].children
        type_definition = self.type_definition(code)
        return type_definition.root.children if type_definition else {}

    def type_definition(self, code: str) -> Definition | None:
        """The definition of type `code` here: its type profile (SimpleQuantity...) or its base type."""
        entry = self.type_entry(code)
        type_profile = next((url for url in (entry or {}).get("profile", ()) if definition(url)), None)
        return definition(type_profile or CORE + code)

    def constraints(self, code: str) -> list[Json]:
        """The invariants a value of type `code` here must meet: the element's and its type's."""
        found = self._constraints.get(code)
        if found is None:
            found = self._constraints[code] = self._own_and_type_constraints(code)
        return found

    def _own_and_type_constraints(self, code: str) -> list[Json]:
        own = self.element.get("constraint", [])
        type_definition = self.type_definition(code) if code not in INLINE_TYPES else None
        if type_definition is None or type_definition.root is self:
            return own
        keys = {c["key"] for c in own}
        return own + [c for c in type_definition.root.element.get("constraint", ()) if c["key"] not in keys]

    def fhirpath_type(self, code: str) -> str:
        """The type name fhirpathpy needs to resolve choice elements under a value of this element."""
        if code in INLINE_TYPES or not code:
            reference = self.element.get("contentReference")
            return reference.removeprefix("#") if reference else self.element.get("base", {}).get("path", self.path)
        return code


@dataclass(eq=False)
class Definition:
    """A compiled StructureDefinition snapshot."""

    url: str
    type: str
    kind: str
    root: ElementNode = field(repr=False)
    nodes: dict[str, ElementNode] = field(repr=False)
    """Nodes by element id."""


def structure_definition(url: str) -> Json | None:
    """The StructureDefinition with canonical `url` (`url|version` accepted), if known."""
    url = url.split("|", 1)[0]
    return profiles.structure_definitions().get(url) or structure_definitions_by_url().get(url)


def clinic_profiles() -> dict[str, Json]:
    """The clinic's profiles keyed by canonical URL."""
    return profiles.structure_definitions()


@cache
def definition(url: str) -> Definition | None:
    """The compiled snapshot of the StructureDefinition `url`, None if unknown."""
    sd = structure_definition(url)
    return compile_definition(sd) if sd and "snapshot" in sd else None


def resource_definition(resource_type: str) -> Definition | None:
    """The compiled base definition of a resource type."""
    sd = structure_definitions().get(resource_type)
    return definition(sd["url"]) if sd else None


def compile_definition(sd: Json) -> Definition:
    elements = sd["snapshot"]["element"]
    first = elements[0]
    root = ElementNode(first, None, first["path"], False)  # type: ignore[arg-type]
    compiled = Definition(sd["url"], sd["type"], sd["kind"], root, {first["id"]: root})
    root.definition = compiled
    for element in elements[1:]:
        element_id = element.get("id", element["path"])
        parent_id, _, last = element_id.rpartition(".")
        parent = compiled.nodes.get(parent_id)
        if parent is None or "/" in last:
            continue  # re-slicing is not supported (see docs/profiles.md)
        name, _, slice_name = last.partition(":")
        node = ElementNode(element, compiled, name.removesuffix("[x]"), name.endswith("[x]"))
        compiled.nodes[element_id] = node
        if slice_name:
            sliced = parent.children.get(node.name)
            if sliced is not None:
                sliced.slices.append(node)
        else:
            parent.children[node.name] = node
    return compiled


def type_code(code: str) -> str:
    """A snapshot type code as a FHIR type name; FHIRPath System types as their primitive."""
    return code.removeprefix(SYSTEM_TYPE_PREFIX).lower() if code.startswith(SYSTEM_TYPE_PREFIX) else code


def choice_type(suffix: str) -> str:
    """The type code behind a choice element's JSON suffix (`Quantity`, `DateTime` -> `dateTime`)."""
    known = structure_definitions()
    if suffix in known:
        return suffix
    lowered = suffix[:1].lower() + suffix[1:]
    return lowered if lowered in known else suffix
