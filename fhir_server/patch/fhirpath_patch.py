"""FHIRPath Patch (hl7.org/fhir/R4/fhirpatch.html): applying add, insert, delete, replace and move.

Owns what each operation type does to the elements its path selects and when it must refuse:
add, insert, replace and move need their path to find something; delete of nothing is no change;
no operation may touch more than one element (or, for insert and move, more than one list).
"""

from __future__ import annotations

import copy
import re

from fhir_server.patch.document import Add, Delete, Insert, Move, Operation, Replace, read_operations
from fhir_server.patch.elements import Element, child
from fhir_server.patch.errors import PatchError, unprocessable
from fhir_server.patch.fields import Field, Json
from fhir_server.patch.locate import Location, select
from fhir_server.patch.values import put, value_for

# `parent.name` with a plain element name at the end: how insert finds a list that is still empty,
# which a path cannot select. The greedy prefix takes the last dot, which is never inside a string
# literal when the path ends in a bare name.
_PARENT_AND_NAME = re.compile(r"(?P<parent>.+)\.(?P<name>[A-Za-z][A-Za-z0-9]*)")


def apply_fhirpath_patch(resource: Json, parameters: object) -> Json:
    """Apply a FHIRPath Patch Parameters resource to a copy of `resource` and return it.

    Raises `PatchError`: "invalid" when the document is malformed (checked in full before any
    operation runs), "processing" when an operation cannot be applied to this resource.
    """
    operations = read_operations(parameters)
    patched = copy.deepcopy(resource)
    for operation in operations:
        try:
            _apply(patched, operation)
        except PatchError as error:
            error.expression = error.expression or operation.where
            raise
    return patched


def _apply(resource: Json, operation: Operation) -> None:
    match operation:
        case Add():
            _add(resource, operation)
        case Insert():
            _insert(resource, operation)
        case Delete():
            _delete(resource, operation)
        case Replace():
            _replace(resource, operation)
        case Move():
            _move(resource, operation)


def _add(resource: Json, operation: Add) -> None:
    target = _select_one(resource, operation, "adding")
    put(target.holder(), target.context, operation.name, operation.value)


def _insert(resource: Json, operation: Insert) -> None:
    field, element = _select_list(resource, operation, "inserting")
    size = len(field.items())
    if operation.index > size:
        raise unprocessable(f"index {operation.index} is out of range: {operation.path} has {size} elements")
    value, _ = value_for(operation.value, element)
    field.insert(operation.index, value)


def _delete(resource: Json, operation: Delete) -> None:
    found = select(resource, operation.path)
    if not found:
        return
    if len(found) > 1:
        raise unprocessable(f"{operation.path} selects {len(found)} elements; delete removes only one")
    _element_at(found[0], operation)
    _remove(found[0])


def _replace(resource: Json, operation: Replace) -> None:
    target = _select_one(resource, operation, "replacing")
    field, element = _element_at(target, operation)
    value, type_code = value_for(operation.value, element)
    key = element.json_key(type_code)
    if key == field.key:
        field.set(value, target.index)
    else:
        # A choice element changing type changes its JSON key (valueString -> valueQuantity).
        field.delete(target.index)
        Field(field.owner, key).set(value)


def _move(resource: Json, operation: Move) -> None:
    field, _ = _select_list(resource, operation, "moving")
    size = len(field.items())
    for name, number in (("source", operation.source), ("destination", operation.destination)):
        if number >= size:
            raise unprocessable(f"{name} {number} is out of range: {operation.path} has {size} elements")
    field.insert(operation.destination, field.pop(operation.source))


def _select_one(resource: Json, operation: Operation, doing: str) -> Location:
    found = select(resource, operation.path)
    if not found:
        raise unprocessable(f"No content found at {operation.path} when {doing}")
    if len(found) > 1:
        raise unprocessable(
            f"{operation.path} selects {len(found)} elements; {operation.type} needs exactly one"
        )
    return found[0]


def _element_at(location: Location, operation: Operation) -> tuple[Field, Element]:
    if location.field is None or location.element is None:
        raise unprocessable(f"{operation.type} cannot be applied to the resource itself")
    return location.field, location.element


def _select_list(resource: Json, operation: Insert | Move, doing: str) -> tuple[Field, Element]:
    """The list the path selects the items of (for insert, possibly an empty one)."""
    found = select(resource, operation.path)
    if not found:
        return _empty_list(resource, operation, doing)
    field, element = found[0].field, found[0].element
    if field is None or element is None or not element.repeats:
        raise unprocessable(f"{operation.path} does not select a list")
    if not all(field.same_as(location.field) for location in found) or len(found) != len(field.items()):
        raise unprocessable(f"{operation.path} must select all the items of one list")
    return field, element


def _empty_list(resource: Json, operation: Insert | Move, doing: str) -> tuple[Field, Element]:
    match = _PARENT_AND_NAME.fullmatch(operation.path)
    parents = select(resource, match["parent"]) if match and isinstance(operation, Insert) else []
    if match is None or len(parents) != 1 or not isinstance(parents[0].value, dict):
        raise unprocessable(f"No content found at {operation.path} when {doing}")
    found = child(parents[0].context, match["name"])
    if found is None or not found[0].repeats:
        raise unprocessable(f"{operation.path} is not a list")
    return Field(parents[0].value, found[0].name), found[0]


def _remove(location: Location) -> None:
    """Delete the element at `location`, then any object the deletion leaves empty."""
    field, up = location.field, location.up
    if field is None or up is None:
        return
    field.delete(location.index)
    if field.owner or up.field is None:
        return
    if location.in_extensions:
        up.field.drop_companion(up.index)
    else:
        _remove(up)
