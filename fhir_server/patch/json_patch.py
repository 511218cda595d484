"""JSON Patch (RFC 6902) applied to a FHIR resource, on top of the `jsonpatch` library.

Owns turning the library's exceptions into `PatchError`s of the right kind, naming the failing
operation, and the one FHIR rule JSON Patch itself does not know: the result is still a resource
of the same type.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from fhir_server.patch.errors import invalid, unprocessable


def apply_json_patch(resource: dict[str, Any], operations: object) -> dict[str, Any]:
    """Apply a JSON Patch document (a list of operations) to a copy of `resource` and return it.

    Raises `PatchError`: "invalid" when the document is malformed, "processing" when an operation
    cannot be applied to this resource (missing target, failed `test`...).
    """
    if not isinstance(operations, list):
        raise invalid("A JSON Patch document must be a JSON array of operations")
    # Operations run one at a time, so that an error names the operation it comes from; the patch
    # stays atomic because they all work on a private copy.
    document: Any = copy.deepcopy(resource)
    for number, operation in enumerate(operations):
        where = f"/{number}"
        patch = _parse_operation(operation, where)
        try:
            document = patch.apply(document, in_place=True)
        except jsonpatch.InvalidJsonPatch as error:
            raise invalid(str(error), where) from error
        except jsonpatch.JsonPatchTestFailed as error:
            raise unprocessable(f"test failed: {error}", where) from error
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as error:
            raise unprocessable(str(error), where) from error
    if not isinstance(document, dict) or document.get("resourceType") != resource.get("resourceType"):
        raise unprocessable(f"The patched document is no longer a {resource.get('resourceType')} resource")
    return document


def _parse_operation(operation: object, where: str) -> jsonpatch.JsonPatch:
    if not isinstance(operation, dict):
        raise invalid("An operation must be a JSON object", where)
    try:
        patch = jsonpatch.JsonPatch([operation])
        # The library reads `from` only when applying; a malformed pointer there is still a
        # malformed document, not a failure to apply it.
        if isinstance(operation.get("from"), str):
            jsonpointer.JsonPointer(operation["from"])
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException) as error:
        raise invalid(str(error), where) from error
    return patch
