"""The input parameters of an operation: from the query string (GET) or a Parameters body (POST)."""

from __future__ import annotations

from typing import Any

from fhir_server.fhir.outcome import bad_request
from fhir_server.interactions.model import FhirRequest

_RESULT_PARAMETERS = frozenset({"_format", "_pretty"})


def operation_parameters(req: FhirRequest) -> list[tuple[str, Any]]:
    """(name, value) pairs: strings from the query; `value[x]` or `resource` from a Parameters body."""
    pairs: list[tuple[str, Any]] = [(k, v) for k, v in req.params if k not in _RESULT_PARAMETERS]
    body = req.body
    if body is None:
        return pairs
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise bad_request("An operation invoked with POST takes a Parameters resource as its body")
    for parameter in body.get("parameter", []):
        name = parameter.get("name")
        if not isinstance(name, str):
            raise bad_request("Every Parameters.parameter needs a name")
        pairs.append((name, _value(parameter)))
    return pairs


def _value(parameter: dict[str, Any]) -> Any:
    if "resource" in parameter:
        return parameter["resource"]
    for key, value in parameter.items():
        if key.startswith("value"):
            return value
    return parameter.get("part")
