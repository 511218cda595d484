"""FHIRPath Patch (hl7.org/fhir/R4/fhirpatch.html): applying add, insert, delete, replace and move.

Owns what each operation type does to the elements its path selects and when it must refuse:
add, insert, replace and move need their path to find something; delete of nothing is no change;
no operation may touch more than one element (or, for insert and move, more than one list).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

from fhir_server.patch.document import Operation, read_operations
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
            _APPLY[operation.type](patched, operation)
        except PatchError as error:
            error.expression = error.expression or operation.where
            raise
    return patched


def _add(resource: Json, operation: Operation) -> None:
    target = _select_one(resource, operation, "adding")
    if isinstance(target.value, dict):
        owner = target.value
    elif target.field is not None:
        # A primitive's id and extensions live in its `_name` twin.
        owner = target.field.companion(target.index, create=True)
    else:
        raise unprocessable(f"Cannot add to {operation.path}")
    put(owner, target.context, operation.name, operation.value)


def _insert(resource: Json, operation: Operation) -> None:
    field, element = _select_list(resource, operation, "inserting")
    if operation.index > len(field.items()):
        raise unprocessable(
            f"index {operation.index} is out of range: {operation.path} has {len(field.items())} elements"
        )
    value, _ = value_for(operation.value, element)
    field.insert(operation.index, value)


def _delete(resource: Json, operation: Operation) -> None:
    found = select(resource, operation.path)
    if not found:
        return
    if len(found) > 1:
        raise unprocessable(f"{operation.path} selects {len(found)} elements; delete removes only one")
    _remove(_editable(found[0], operation))


def _replace(resource: Json, operation: Operation) -> None:
    target = _editable(_select_one(resource, operation, "replacing"), operation)
    value, type_code = value_for(operation.value, target.element)
    key = target.element.json_key(type_code)
    if key == target.field.key:
        target.field.set(value, target.index)
    else:
        # A choice element changing type changes its JSON key (valueString -> valueQuantity).
        target.field.delete(target.index)
        Field(target.field.owner, key).set(value)


def _move(resource: Json, operation: Operation) -> None:
    field, _ = _select_list(resource, operation, "moving")
    size = len(field.items())
    for name, number in (("source", operation.source), ("destination", operation.destination)):
        if number >= size:
            raise unprocessable(f"{name} {number} is out of range: {operation.path} has {size} elements")
    field.insert(operation.destination, field.pop(operation.source))


_APPLY: dict[str, Callable[[Json, Operation], None]] = {
    "add": _add,
    "insert": _insert,
    "delete": _delete,
    "replace": _replace,
    "move": _move,
}


def _select_one(resource: Json, operation: Operation, doing: str) -> Location:
    found = select(resource, operation.path)
    if not found:
        raise unprocessable(f"No content found at {operation.path} when {doing}")
    if len(found) > 1:
        raise unprocessable(
            f"{operation.path} selects {len(found)} elements; {operation.type} needs exactly one"
        )
    return found[0]


def _editable(location: Location, operation: Operation) -> Location:
    if location.field is None or location.element is None:
        raise unprocessable(f"{operation.type} cannot be applied to the resource itself")
    return location


def _select_list(resource: Json, operation: Operation, doing: str) -> tuple[Field, Element]:
    """The list the path selects the items of (for insert, possibly an empty one)."""
    found = select(resource, operation.path)
    if not found:
        return _empty_list(resource, operation, doing)
    first = found[0]
    if first.field is None or first.element is None or not first.element.repeats:
        raise unprocessable(f"{operation.path} does not select a list")
    same_list = all(first.field.same_as(location.field) for location in found)
    if not same_list or len(found) != len(first.field.items()):
        raise unprocessable(f"{operation.path} must select all the items of one list")
    return first.field, first.element


def _empty_list(resource: Json, operation: Operation, doing: str) -> tuple[Field, Element]:
    match = _PARENT_AND_NAME.fullmatch(operation.path)
    parents = select(resource, match["parent"]) if match and operation.type == "insert" else []
    if len(parents) != 1 or not isinstance(parents[0].value, dict):
        raise unprocessable(f"No content found at {operation.path} when {doing}")
    parent = parents[0]
    found = child(parent.context, match["name"])
    if found is None or not found[0].repeats:
        raise unprocessable(f"{operation.path} is not a list")
    return Field(parent.value, found[0].name), found[0]


def _remove(location: Location) -> None:
    """Delete the element at `location`, then any object the deletion leaves empty."""
    location.field.delete(location.index)
    up = location.up
    if location.field.owner or up is None or up.field is None:
        return
    if location.in_extensions:
        up.field.drop_companion(up.index)
    else:
        _remove(up)
