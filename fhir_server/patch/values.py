"""Turning the `value` part of a FHIRPath Patch operation into the JSON of the element it goes to.

Owns the three spellings of a value (a typed `value[x]`, a `resource`, or nested `part`s naming
the children of an anonymous or complex type) and the check that its type fits the element.
"""

from __future__ import annotations

import copy

from fhir_server.patch.document import Parts, ValueSpec
from fhir_server.patch.elements import Element, child, is_primitive
from fhir_server.patch.errors import unprocessable
from fhir_server.patch.fields import Field, Json, Value


def value_for(spec: ValueSpec, element: Element) -> tuple[Value, str]:
    """The JSON `spec` gives for `element`, and its type code."""
    if isinstance(spec, Parts):
        type_code = _parts_type(element)
        value = Value(_object_from_parts(spec, element.context(type_code)))
    else:
        type_code = spec.type_code
        # Copies, so that the result shares nothing with the patch document.
        value = Value(copy.deepcopy(spec.json), copy.deepcopy(spec.extensions))
    if not element.accepts(type_code):
        raise unprocessable(f"{element.path} cannot hold a value of type {type_code}")
    return value, type_code


def put(owner: Json, context: str, name: str, spec: ValueSpec) -> None:
    """Add the child `name` given by `spec` to the JSON object `owner` of type `context`.

    A repeating element gets the value appended; a single one must not be there yet.
    """
    found = child(context, name)
    if found is None:
        raise unprocessable(f"{context} has no element '{name}'")
    element, named_type = found
    value, type_code = value_for(spec, element)
    if element.is_choice and named_type is not None and named_type != type_code:
        raise unprocessable(f"'{name}' holds values of type {named_type}, not {type_code}")
    field = Field(owner, element.json_key(type_code))
    if element.repeats:
        field.append(value)
        return
    present = element.present_key(owner)
    if present is not None:
        raise unprocessable(f"{element.path} does not repeat and already has a value: use replace")
    field.set(value)


def _parts_type(element: Element) -> str:
    type_code = element.types[0] if len(element.types) == 1 and not element.is_choice else None
    if type_code is None or type_code == "Resource" or is_primitive(type_code):
        raise unprocessable(f"{element.path} takes a typed value (value[x] or resource), not parts")
    return type_code


def _object_from_parts(spec: Parts, context: str) -> Json:
    built: Json = {}
    for name, part in spec.parts:
        put(built, context, name, part)
    return built
