"""Reading a FHIRPath Patch document: a Parameters resource with one `operation` per change.

Owns the shape rules of hl7.org/fhir/R4/fhirpatch.html (which parts each operation type takes,
their types, FHIRPath syntax, the three ways to give a value) and turns a document that keeps
them into typed operations; one that breaks them is an "invalid" `PatchError`, raised before
anything is applied. Whether an operation fits the resource is decided when it is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

from fhir_server.patch.elements import is_primitive, type_for_suffix
from fhir_server.patch.errors import invalid
from fhir_server.patch.fields import Json
from fhir_server.patch.locate import syntax_error

_INTEGER_KEYS = ("valueInteger", "valueUnsignedInt", "valuePositiveInt")
_NUMBER_TYPES = {"integer": int, "unsignedInt": int, "positiveInt": int, "decimal": int | float | Decimal}


@dataclass(frozen=True)
class Typed:
    """A value of a known type: a value[x] (with its `_value[x]` extensions), or a resource."""

    type_code: str
    json: Any
    extensions: Json | None = None


@dataclass(frozen=True)
class Parts:
    """A value given as named parts, the children of an anonymous or complex type."""

    parts: tuple[tuple[str, ValueSpec], ...]


ValueSpec = Typed | Parts


@dataclass(frozen=True)
class Operation:
    """One checked `operation` parameter; its subclass's other fields are the parts it takes."""

    type: ClassVar[str]
    path: str
    where: str  # "Parameters.parameter[2]"


@dataclass(frozen=True)
class Add(Operation):
    type = "add"
    name: str
    value: ValueSpec


@dataclass(frozen=True)
class Insert(Operation):
    type = "insert"
    index: int
    value: ValueSpec


@dataclass(frozen=True)
class Delete(Operation):
    type = "delete"


@dataclass(frozen=True)
class Replace(Operation):
    type = "replace"
    value: ValueSpec


@dataclass(frozen=True)
class Move(Operation):
    type = "move"
    source: int
    destination: int


OPERATION_TYPES: dict[str, type[Operation]] = {
    kind.type: kind for kind in (Add, Insert, Delete, Replace, Move)
}
# The parts each operation type takes, every one of them required.
_PARTS = {
    kind: frozenset({"path"} | {field.name for field in fields(operation)} - {"path", "where"})
    for kind, operation in OPERATION_TYPES.items()
}
_ALL_PARTS = frozenset({"type"}).union(*_PARTS.values())


def read_operations(parameters: object) -> list[Operation]:
    """The operations of a FHIRPath Patch document, in order."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise invalid("A FHIRPath Patch document must be a Parameters resource", "Parameters")
    entries = parameters.get("parameter", [])
    if not isinstance(entries, list):
        raise invalid("parameter must be an array", "Parameters.parameter")
    return [_read_operation(entry, f"Parameters.parameter[{number}]") for number, entry in enumerate(entries)]


def _read_operation(entry: object, where: str) -> Operation:
    if not isinstance(entry, dict) or entry.get("name") != "operation":
        raise invalid("Every parameter must be named 'operation'", where)
    parts = _parts_by_name(entry, where)
    unknown = parts.keys() - _ALL_PARTS
    if unknown:
        raise invalid(f"Unknown part '{sorted(unknown)[0]}'", where)
    if "type" not in parts:
        raise invalid("The operation has no 'type' part", where)
    kind = _primitive(parts["type"], ("valueCode", "valueString"), str)
    if kind not in OPERATION_TYPES:
        raise invalid(
            f"Unknown operation type '{kind}' (expected one of {', '.join(OPERATION_TYPES)})", where
        )
    missing = _PARTS[kind] - parts.keys()
    if missing:
        raise invalid(f"A {kind} operation needs a '{sorted(missing)[0]}' part", where)
    extra = parts.keys() - _PARTS[kind] - {"type"}
    if extra:
        raise invalid(f"A {kind} operation takes no '{sorted(extra)[0]}' part", where)
    path = _primitive(parts["path"], ("valueString",), str)
    problem = syntax_error(path)
    if problem is not None:
        raise invalid(f"Invalid FHIRPath '{path}': {problem}", parts["path"].where)
    values = {name: _part_value(name, part) for name, part in parts.items() if name not in ("type", "path")}
    return OPERATION_TYPES[kind](path=path, where=where, **values)


def _part_value(name: str, part: _Part) -> Any:
    if name == "name":
        return _primitive(part, ("valueString",), str)
    if name == "value":
        return _read_value(part.json, part.where)
    number = _primitive(part, _INTEGER_KEYS, int)
    if number < 0:
        raise invalid(f"'{name}' must not be negative", part.where)
    return number


class _Part(NamedTuple):
    json: Json
    where: str


def _parts_by_name(entry: Json, where: str) -> dict[str, _Part]:
    parts = entry.get("part")
    if not isinstance(parts, list) or not parts:
        raise invalid("The operation has no parts", where)
    by_name: dict[str, _Part] = {}
    for number, part in enumerate(parts):
        name = part.get("name") if isinstance(part, dict) else None
        if not isinstance(name, str):
            raise invalid("Every part needs a name", f"{where}.part[{number}]")
        if name in by_name:
            raise invalid(f"Part '{name}' is given twice", f"{where}.part[{number}]")
        by_name[name] = _Part(part, f"{where}.part[{number}]")
    return by_name


def _primitive(part: _Part, keys: tuple[str, ...], kind: type) -> Any:
    present = [key for key in keys if key in part.json]
    value = part.json[present[0]] if len(present) == 1 else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise invalid(f"'{part.json['name']}' must be given as {' or '.join(keys)}", part.where)
    return value


def _read_value(part: Json, where: str) -> ValueSpec:
    """A value is exactly one of: a value[x] of a FHIR data type, a resource, nested parts."""
    typed = [key for key in part if key.startswith("value")]
    if len(typed) + ("resource" in part) + ("part" in part) != 1:
        raise invalid("A value needs exactly one of value[x], resource or part", where)
    if typed:
        return _read_typed(typed[0], part, where)
    if "resource" in part:
        resource = part["resource"]
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise invalid("resource must be a resource", where)
        return Typed(resource["resourceType"], resource)
    if not isinstance(part["part"], list) or not part["part"]:
        raise invalid("part must be a non-empty array", where)
    children = []
    for number, nested in enumerate(part["part"]):
        inner = f"{where}.part[{number}]"
        if not isinstance(nested, dict) or not isinstance(nested.get("name"), str):
            raise invalid("Every part needs a name", inner)
        children.append((nested["name"], _read_value(nested, inner)))
    return Parts(tuple(children))


def _read_typed(key: str, part: Json, where: str) -> Typed:
    type_code = type_for_suffix(key.removeprefix("value"))
    if type_code is None:
        raise invalid(f"{key}: not a FHIR data type", where)
    if type_code == "boolean":
        expected: Any = bool
    elif type_code in _NUMBER_TYPES:
        expected = _NUMBER_TYPES[type_code]
    else:
        expected = str if is_primitive(type_code) else dict
    value = part[key]
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise invalid(f"{key} has a JSON value of the wrong kind", where)
    extensions = part.get("_" + key)
    if extensions is not None and not isinstance(extensions, dict):
        raise invalid(f"_{key} must be a JSON object", where)
    return Typed(type_code, value, extensions)
