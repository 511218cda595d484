"""The compiled element model: FHIR types as trees of JSON properties, built from snapshots.

Owns the translation of StructureDefinition snapshot elements into the form validators and
`_summary` walk: one `TypeModel` per type (resource, data type, primitive) or backbone
element, holding its `Property` objects keyed by JSON property name. Choice elements
(`value[x]`) are expanded into one property per allowed type (`valueQuantity`, `valueString`...),
`contentReference` elements share the referenced backbone's model (so `Questionnaire.item.item`
*is* the `Questionnaire.item` model), and primitive types carry their JSON kind, R4 regex,
maximum length and integer range.

Nothing here knows a particular type: everything comes from the snapshot element list, so
`compile_structure_definition()` builds the same form from a profile's snapshot (a profile's
model refers to the base models for the data types it does not constrain inline). Slices are
left out: they constrain a JSON property that the unsliced element already defines, and belong
to profile validation, as do fixed/pattern values, bindings and invariants, which stay reachable
through `Element.definition`.

The base models (every specialization StructureDefinition plus the core data-type profiles
such as `SimpleQuantity`) are compiled together on first use, in about 0.15 s, then shared.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from fhir_server.definitions import resource_types, structure_definitions, structure_definitions_by_url

Json = dict[str, Any]
JsonKind = Literal["boolean", "integer", "decimal", "string"]
Kind = Literal["resource", "complex-type", "primitive-type", "backbone"]
ValueKind = Literal["primitive", "complex", "resource"]

_SYSTEM_TYPE_PREFIX = "http://hl7.org/fhirpath/System."
_FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_REGEX_EXTENSION = "http://hl7.org/fhir/StructureDefinition/regex"
_JSON_KIND_OF_SYSTEM_TYPE: dict[str, JsonKind] = {
    "Boolean": "boolean", "Integer": "integer", "Decimal": "decimal",
}

# R4's base64Binary regex, `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`, backtracks exponentially on a
# non-matching value with runs of whitespace (20 groups take minutes) and needs 0.1 s per MB even
# when it matches. This possessive form accepts exactly the same strings in linear time.
_LINEAR_EQUIVALENTS = {
    r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+": r"\s*+(?:[0-9a-zA-Z+/=]{4}\s*+)++",
}
# R4 states the narrative rule in prose only (narrative.html: the xhtml is a single `div`).
_XHTML_PATTERN = r"(?s)<div[\s>/].*"


@dataclass(frozen=True, slots=True)
class Primitive:
    """How the value of a primitive type is written in JSON.

    `json_kind` is the JSON type (R4 json.html: boolean as true/false, integer, positiveInt,
    unsignedInt and decimal as numbers, everything else as a string); `regex` is the R4 regex of
    the type, to be matched against the whole string (for integers, against its decimal form).
    """

    name: str
    json_kind: JsonKind
    regex: re.Pattern[str] | None
    max_length: int | None
    min_value: int | None
    max_value: int | None


@dataclass(frozen=True, slots=True, eq=False)
class Element:
    """One snapshot element, as compiled: shared by all JSON properties it expands to."""

    path: str                 # e.g. "Observation.value[x]"
    name: str                 # last path segment without "[x]", e.g. "value"
    min: int
    max: int | None           # None for "*"
    array: bool               # JSON array: the base definition's max is not "1"
    types: tuple[str, ...]    # allowed type codes, e.g. ("Quantity", "CodeableConcept", ...)
    choice: bool
    summary: bool
    modifier: bool
    definition: Json = field(repr=False)  # the snapshot element (fixed/pattern, binding, constraints)


@dataclass(frozen=True, slots=True, eq=False)
class Property:
    """One JSON property name of an object: an element, or one type of a choice element."""

    name: str                 # e.g. "valueQuantity"
    element: Element
    type: str                 # the type code behind this name, e.g. "Quantity"
    kind: ValueKind
    model: TypeModel | None = field(repr=False)  # children, or the `_name` object; None for resources
    extensible: bool = False  # a `_name` sibling is allowed (FHIR primitive, not a FHIRPath System type)


@dataclass(slots=True, eq=False)
class TypeModel:
    """A type, or an element whose children the snapshot lists inline (kind "backbone": backbone
    elements, and in profiles constrained data-type elements): its JSON properties and, for
    primitives, their value rules.

    `properties` maps JSON names to properties; `extensions` maps `_name` keys of primitive
    properties to the same properties; `required` lists the elements with min >= 1 with every JSON
    key (value or `_name`, for each choice type) that makes them present.
    """

    name: str                 # type name or backbone path, e.g. "Patient", "Patient.contact"
    kind: Kind
    properties: dict[str, Property] = field(default_factory=dict, repr=False)
    extensions: dict[str, Property] = field(default_factory=dict, repr=False)
    elements: tuple[Element, ...] = field(default=(), repr=False)
    required: tuple[tuple[Element, tuple[str, ...]], ...] = field(default=(), repr=False)
    primitive: Primitive | None = None


def element_model(type_name: str) -> TypeModel:
    """The compiled model of an R4 type or core data-type profile (`Patient`, `HumanName`,
    `string`, `SimpleQuantity`...). Raises KeyError for unknown names."""
    return _base_models()[type_name]


def resource_model(resource_type: str) -> TypeModel | None:
    """The model of a concrete R4 resource type, or None if `resource_type` names none."""
    return _resource_models().get(resource_type)


def summary_elements(type_name: str) -> frozenset[str]:
    """JSON property names of `type_name`'s elements marked isSummary (choices expanded), the
    ones `_summary=true` keeps."""
    return frozenset(name for name, prop in element_model(type_name).properties.items()
                     if prop.element.summary)


def compile_structure_definition(sd: Json, resolve: Callable[[str], TypeModel] = element_model) -> TypeModel:
    """Compile a StructureDefinition snapshot, base or profile, into a `TypeModel`.

    `resolve` gives the model of a type code or profile id the snapshot does not expand inline;
    by default the base models.
    """
    model = TypeModel(name=sd["id"], kind=sd["kind"])
    _fill(model, sd, resolve)
    return model


@cache
def _base_models() -> dict[str, TypeModel]:
    # Types refer to each other in cycles (Extension -> Reference -> Identifier -> Extension), so
    # every model object exists before any is filled in.
    definitions = [sd for sd in structure_definitions().values()
                   if sd.get("derivation") != "constraint" or sd["kind"] != "resource"]
    models = {sd["id"]: TypeModel(name=sd["id"], kind=sd["kind"]) for sd in definitions}
    for sd in definitions:
        _fill(models[sd["id"]], sd, models.__getitem__)
    return models


@cache
def _resource_models() -> dict[str, TypeModel]:
    return {name: element_model(name) for name in resource_types()}


def _fill(model: TypeModel, sd: Json, resolve: Callable[[str], TypeModel]) -> None:
    elements = [e for e in sd["snapshot"]["element"] if ":" not in e["id"]]
    children: dict[str, list[Json]] = {}
    for element in elements[1:]:
        children.setdefault(element["path"].rpartition(".")[0], []).append(element)
    root = elements[0]["path"]
    # Backbone models exist before any is filled, for contentReference to earlier or later ones.
    backbones = {path: TypeModel(name=path, kind="backbone") for path in children if path != root}
    # A contentReference may name a slice (`#Provenance.agent:Author`): its JSON shape is the
    # sliced element's.
    by_id = {e["id"]: e["path"] for e in sd["snapshot"]["element"]}

    def model_of(element: Json, type_code: str, profiles: list[str]) -> TypeModel | None:
        if element["path"] in backbones:
            return backbones[element["path"]]
        if reference := element.get("contentReference"):
            target = reference.partition("#")[2]
            return backbones[by_id[target]]
        if type_code == "Resource":
            return None
        known = [url for url in profiles if url in structure_definitions_by_url()]
        if len(known) == 1:
            return resolve(structure_definitions_by_url()[known[0]]["id"])
        return resolve(type_code)

    def fill(target: TypeModel, parent: str) -> None:
        own = children.get(parent, [])
        if sd["kind"] == "primitive-type" and parent == root:
            value = next(e for e in own if e["path"] == f"{root}.value")
            target.primitive = _primitive(sd, value)
            own = [e for e in own if e is not value]
        if sd["kind"] == "resource" and parent == root:
            own = [_with_id_type(e) if e["path"] == f"{root}.id" else e for e in own]
        _set_properties(target, own, model_of)

    fill(model, root)
    for path, backbone in backbones.items():
        fill(backbone, path)


def _with_id_type(element: Json) -> Json:
    # R4 snapshots type Resource.id as System.String with fhir-type `string`, while resource.html
    # defines it as `id` ([A-Za-z0-9\-\.]{1,64}), which is what servers and the validator enforce.
    return {**element, "type": [{"code": _SYSTEM_TYPE_PREFIX + "String",
                                 "extension": [{"url": _FHIR_TYPE_EXTENSION, "valueUrl": "id"}]}]}


def _set_properties(
    target: TypeModel, elements: Iterable[Json],
    model_of: Callable[[Json, str, list[str]], TypeModel | None],
) -> None:
    compiled, required = [], []
    for definition in elements:
        types = definition.get("type") or [{"code": "BackboneElement"}]
        element = _element(definition, types)
        compiled.append(element)
        keys = []
        for type_ in types:
            code, extensible = _type_code(type_)
            name = element.name + code[0].upper() + code[1:] if element.choice else element.name
            type_model = model_of(definition, code, type_.get("profile", []))
            if type_model is None:
                kind: ValueKind = "resource"
            else:
                kind = "primitive" if type_model.kind == "primitive-type" else "complex"
            prop = Property(name, element, code, kind, type_model, extensible and kind == "primitive")
            target.properties[name] = prop
            keys.append(name)
            if prop.extensible:
                target.extensions["_" + name] = prop
                keys.append("_" + name)
        if element.min:
            required.append((element, tuple(keys)))
    target.elements = tuple(compiled)
    target.required = tuple(required)


def _element(definition: Json, types: list[Json]) -> Element:
    path = definition["path"]
    last = path.rpartition(".")[2]
    base_max = definition.get("base", definition)["max"]
    return Element(
        path=path,
        name=last.removesuffix("[x]"),
        min=definition["min"],
        max=None if definition["max"] == "*" else int(definition["max"]),
        array=base_max != "1",
        types=tuple(_type_code(t)[0] for t in types),
        choice=last.endswith("[x]"),
        summary=bool(definition.get("isSummary")),
        modifier=bool(definition.get("isModifier")),
        definition=definition,
    )


def _type_code(type_: Json) -> tuple[str, bool]:
    """The FHIR type code of a snapshot type, and whether it is a FHIR type (not a System one).

    FHIRPath System types (Element.id, Extension.url, primitive values) name their FHIR type in
    the fhir-type extension; they are plain JSON values without a `_name` sibling.
    """
    code = type_["code"]
    if not code.startswith(_SYSTEM_TYPE_PREFIX):
        return code, True
    fhir_type = _extension_value(type_, _FHIR_TYPE_EXTENSION)
    return (fhir_type or "string"), False


def _extension_value(holder: Json, url: str) -> Any:
    for extension in holder.get("extension", ()):
        if extension["url"] == url:
            return next(v for k, v in extension.items() if k.startswith("value"))
    return None


def _primitive(sd: Json, value: Json) -> Primitive:
    lineage = _primitive_lineage(sd)
    rules = [next(e for e in s["snapshot"]["element"] if e["path"] == f"{s['id']}.value") for s in lineage]
    system_code = rules[-1]["type"][0]["code"].removeprefix(_SYSTEM_TYPE_PREFIX)
    json_kind = _JSON_KIND_OF_SYSTEM_TYPE.get(system_code, "string")
    if sd["id"] == "xhtml":
        pattern = _XHTML_PATTERN
    else:
        pattern = _extension_value(value["type"][0], _REGEX_EXTENSION)
        pattern = _LINEAR_EQUIVALENTS.get(pattern, pattern)
    return Primitive(
        name=sd["id"],
        json_kind=json_kind,
        regex=re.compile(pattern, re.ASCII) if pattern else None,
        max_length=_inherited(rules, "maxLength"),
        min_value=_inherited(rules, "minValueInteger"),
        max_value=_inherited(rules, "maxValueInteger"),
    )


def _primitive_lineage(sd: Json) -> list[Json]:
    """`sd` and the primitive types it derives from, nearest first (positiveInt, integer)."""
    by_url = structure_definitions_by_url()
    lineage = [sd]
    while (base := by_url.get(lineage[-1].get("baseDefinition", ""))) and base["kind"] == "primitive-type":
        lineage.append(base)
    return lineage


def _inherited(rules: list[Json], key: str) -> Any:
    return next((rule[key] for rule in rules if key in rule), None)
