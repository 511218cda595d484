"""The strict R4 structural walker: a JSON resource checked against the compiled element model.

Owns the rules of the R4 JSON format (hl7.org/fhir/R4/json.html) and of the base definitions'
cardinalities and types: known resource types and properties, one type per choice element, JSON
types and R4 regexes of primitives, arrays exactly where the base max is not 1, no empty
objects, arrays or strings, `null` only as an array placeholder paired with a `_name` entry,
`_name` siblings aligned with their values, required elements, contained and nested resources.

Every problem found is reported, each once, with the FHIRPath location of the element at
fault; the walk does not stop at the first error. Invariants, bindings and profiles are not
checked here.
"""

from __future__ import annotations

from decimal import Decimal
from math import isfinite
from typing import Any

from fhir_server.definitions.model import Element, Primitive, Property, TypeModel, resource_model
from fhir_server.validation.issue import Issue

Issues = list[Issue]

_STRUCTURE = "structure"
_REQUIRED = "required"
_VALUE = "value"


def validate_structure(resource: object) -> tuple[Issues, set[str]]:
    """Check `resource` (parsed JSON) strictly against R4.

    Returns the issues (empty when valid) and the resource types met: the resource's own and
    those of contained resources, Bundle entries and Parameters resources.
    """
    issues: Issues = []
    types: set[str] = set()
    try:
        _resource(resource, "", issues, types, contained=False)
    except RecursionError:
        issues.append(Issue("error", "too-costly", "the resource is nested too deeply to validate", ""))
    return issues, types


def _error(issues: Issues, code: str, diagnostics: str, expression: str) -> None:
    issues.append(Issue("error", code, diagnostics, expression))


# Decimals are stored as IEEE 754 decimal128, exact up to 34 significant digits.
MAX_DECIMAL_DIGITS = 34


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _resource(value: object, path: str, issues: Issues, types: set[str], *, contained: bool) -> None:
    if type(value) is not dict:
        _error(issues, _STRUCTURE, f"expected a resource (a JSON object), found {_json_type(value)}", path)
        return
    resource_type = value.get("resourceType")
    model = resource_model(resource_type) if type(resource_type) is str else None
    if model is None:
        if resource_type is None:
            _error(issues, _REQUIRED, "resourceType is missing", path)
        elif type(resource_type) is str:
            _error(issues, "not-supported", f"unknown resource type {resource_type!r}", path)
        else:
            _error(issues, _STRUCTURE, f"resourceType must be a string, found {_json_type(resource_type)}",
                   path)
        return
    types.add(resource_type)
    here = path or resource_type
    _object(value, model, here, issues, types)
    if contained:
        if "id" not in value:
            _error(issues, _REQUIRED, "a contained resource must have an id", f"{here}.id")
        if "contained" in value:
            _error(issues, _STRUCTURE, "a contained resource must not contain resources", f"{here}.contained")


def _complex(value: object, model: TypeModel, path: str, issues: Issues, types: set[str]) -> None:
    if type(value) is not dict:
        _error(issues, _STRUCTURE, f"expected a JSON object, found {_json_type(value)}", path)
    elif not value:
        _error(issues, _STRUCTURE, "empty objects are not allowed", path)
    else:
        _object(value, model, path, issues, types)


def _object(obj: dict[str, Any], model: TypeModel, path: str, issues: Issues, types: set[str]) -> None:
    properties = model.properties
    chosen: dict[Element, str] | None = None
    for key, value in obj.items():
        prop = properties.get(key)
        sibling = prop is None
        if sibling and (prop := model.extensions.get(key)) is None:
            if key != "resourceType" or model.kind != "resource":
                _error(issues, _STRUCTURE, _unknown(key, model), f"{path}.{key}")
            continue
        if prop.element.choice:
            chosen = _choose(chosen, prop, path, issues)
        if sibling:
            _extension_sibling(value, obj.get(prop.name), prop, f"{path}.{prop.name}", issues, types)
        else:
            _value(value, obj, prop, f"{path}.{key}", issues, types)
    for element, keys in model.required:
        if not any(k in obj for k in keys):
            name = f"{element.name}[x]" if element.choice else element.name
            _error(issues, _REQUIRED, f"{name} is required (min {element.min}) but missing", f"{path}.{name}")


def _choose(
    chosen: dict[Element, str] | None, prop: Property, path: str, issues: Issues,
) -> dict[Element, str]:
    if chosen is None:
        chosen = {}
    first = chosen.setdefault(prop.element, prop.name)
    if first != prop.name:
        _error(issues, _STRUCTURE,
               f"{prop.name} and {first} are both given: only one type of {prop.element.name}[x] is allowed",
               f"{path}.{prop.name}")
    return chosen


def _unknown(key: str, model: TypeModel) -> str:
    if key == "resourceType":
        return "resourceType is only allowed at the top of a resource"
    for element in model.elements:
        if element.choice and key.startswith(element.name) and key[len(element.name):][:1].isupper():
            return f"{key}: {key[len(element.name):]} is not an allowed type of {element.path}"
    return f"unknown property {key!r} in {model.name}"


def _value(
    value: object, obj: dict[str, Any], prop: Property, path: str, issues: Issues, types: set[str],
) -> None:
    element = prop.element
    kind = prop.kind
    if element.array:
        if type(value) is not list:
            _error(issues, _STRUCTURE, f"expected an array, found {_json_type(value)}", path)
        elif not value:
            _error(issues, _STRUCTURE, "empty arrays are not allowed", path)
        else:
            _cardinality(len(value), element, path, issues)
            if kind == "primitive":
                _primitive_array(value, obj.get("_" + prop.name), prop, path, issues)
            elif kind == "complex":
                model = prop.model
                for i, item in enumerate(value):
                    _complex(item, model, f"{path}[{i}]", issues, types)
            else:
                contained = prop.name == "contained"
                for i, item in enumerate(value):
                    _resource(item, f"{path}[{i}]", issues, types, contained=contained)
        return
    if element.max == 0:
        _cardinality(1, element, path, issues)
    if kind == "primitive":
        problem = _primitive_problem(value, prop.model.primitive)
        if problem is not None:
            _error(issues, problem[0], problem[1], path)
    elif kind == "complex":
        _complex(value, prop.model, path, issues, types)
    else:
        _resource(value, path, issues, types, contained=False)


def _cardinality(count: int, element: Element, path: str, issues: Issues) -> None:
    if element.max == 0:
        _error(issues, _STRUCTURE, f"{element.path} is not allowed (max 0)", path)
    elif element.max is not None and count > element.max:
        _error(issues, _STRUCTURE, f"{count} values given, at most {element.max} allowed", path)
    elif count < element.min:
        _error(issues, _REQUIRED, f"{count} values given, at least {element.min} required", path)


def _primitive_array(values: list[Any], siblings: object, prop: Property, path: str, issues: Issues) -> None:
    primitive = prop.model.primitive
    paired = siblings if type(siblings) is list else ()
    for i, value in enumerate(values):
        if value is None:
            if i >= len(paired) or paired[i] is None:
                _error(issues, _STRUCTURE,
                       f"null is only allowed where _{prop.name} has an entry at the same index",
                       f"{path}[{i}]")
            continue
        problem = _primitive_problem(value, primitive)
        if problem is not None:
            _error(issues, problem[0], problem[1], f"{path}[{i}]")


def _extension_sibling(
    value: object, values: object, prop: Property, path: str, issues: Issues, types: set[str],
) -> None:
    """Check `_name`, the id/extensions of primitive `name` (its values are checked with `name`)."""
    element = prop.element
    model = prop.model
    if not element.array:
        if type(value) is list:
            _error(issues, _STRUCTURE, f"expected an object for _{prop.name}, found an array", path)
            return
        if values is None and element.max == 0:
            _cardinality(1, element, path, issues)
        _complex(value, model, path, issues, types)
        return
    if type(value) is not list:
        _error(issues, _STRUCTURE, f"expected an array for _{prop.name}, found {_json_type(value)}", path)
        return
    if not value:
        _error(issues, _STRUCTURE, f"empty arrays are not allowed (_{prop.name})", path)
        return
    if type(values) is list:
        if len(values) != len(value):
            _error(issues, _STRUCTURE,
                   f"_{prop.name} has {len(value)} entries but {prop.name} has {len(values)}: "
                   "they must align", path)
    elif values is None:
        _cardinality(len(value), element, path, issues)
    for i, item in enumerate(value):
        # A null here pairs with a value of `name` at the same index; `name`'s own nulls are
        # reported with `name`.
        if item is not None:
            _complex(item, model, f"{path}[{i}]", issues, types)
        elif type(values) is not list:
            _error(issues, _STRUCTURE, f"null in _{prop.name} without a value of {prop.name} to pair with",
                   f"{path}[{i}]")


def _primitive_problem(value: object, primitive: Primitive) -> tuple[str, str] | None:
    """(issue code, diagnostics) if `value` is not a valid JSON value of `primitive`."""
    kind = primitive.json_kind
    if kind == "string":
        if type(value) is not str:
            return _STRUCTURE, f"expected a JSON string ({primitive.name}), found {_json_type(value)}"
        if not value or value.isspace():
            return _VALUE, f"{primitive.name} values must not be empty or whitespace only"
        if primitive.max_length is not None and len(value) > primitive.max_length:
            return _VALUE, f"{primitive.name} value is longer than {primitive.max_length} characters"
        if primitive.regex is not None and primitive.regex.fullmatch(value) is None:
            return _VALUE, f"{_shown(value)} is not a valid {primitive.name}"
    elif kind == "boolean":
        if type(value) is not bool:
            return _STRUCTURE, f"expected JSON true or false (boolean), found {_json_type(value)}"
    elif kind == "integer":
        if type(value) is not int:
            return _STRUCTURE, f"expected a JSON integer ({primitive.name}), found {_json_type(value)}"
        if (primitive.min_value is not None and value < primitive.min_value) or (
                primitive.max_value is not None and value > primitive.max_value) or (
                primitive.regex is not None and primitive.regex.fullmatch(str(value)) is None):
            return _VALUE, f"{value} is out of range for {primitive.name}"
    elif type(value) in (float, Decimal):
        if not isfinite(value):
            return _VALUE, f"{value} is not a valid decimal"
        if type(value) is Decimal and len(value.as_tuple().digits) > MAX_DECIMAL_DIGITS:
            return _VALUE, f"{value} has more than {MAX_DECIMAL_DIGITS} significant digits (not kept exactly)"
    elif type(value) is not int:
        return _STRUCTURE, f"expected a JSON number (decimal), found {_json_type(value)}"
    return None


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
