"""From a request's method and path to the interaction it names (hl7.org/fhir/R4/http.html).

A path is first classified by its shape (`[type]/[id]/_history`...), then the (shape, method)
table gives the interaction code, the same codes the CapabilityStatement uses.
"""

from __future__ import annotations

from fhir_server.definitions import resource_types
from fhir_server.fhir.outcome import FhirError, bad_request
from fhir_server.fhir.primitives import is_valid_id
from fhir_server.interactions.model import Route

_READS = ("GET", "HEAD")
_OPERATION = {"GET": "operation", "POST": "operation"}

INTERACTIONS_BY_SHAPE: dict[str, dict[str, str]] = {
    "system": {"GET": "search-system", "HEAD": "search-system", "POST": "batch"},
    "metadata": dict.fromkeys(_READS, "capabilities"),
    "system-history": dict.fromkeys(_READS, "history-system"),
    "system-search": {"POST": "search-system"},
    "system-operation": _OPERATION,
    "type": {"GET": "search-type", "HEAD": "search-type", "POST": "create", "PUT": "conditional-update",
             "DELETE": "conditional-delete", "PATCH": "conditional-patch"},
    "type-history": dict.fromkeys(_READS, "history-type"),
    "type-search": {"POST": "search-type"},
    "type-operation": _OPERATION,
    "instance": {"GET": "read", "HEAD": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"},
    "instance-history": dict.fromkeys(_READS, "history-instance"),
    "version": dict.fromkeys(_READS, "vread"),
    "instance-operation": _OPERATION,
    "compartment": dict.fromkeys(_READS, "search-compartment"),
}

_TYPES = frozenset(resource_types())
_SYSTEM_WORDS = {"metadata": "metadata", "_history": "system-history", "_search": "system-search"}


def _shape(parts: list[str]) -> tuple[str, Route]:
    """The path's shape and the route fields it carries (interaction left blank)."""
    if not parts:
        return "system", Route("")
    head, rest = parts[0], parts[1:]
    if not rest and head in _SYSTEM_WORDS:
        return _SYSTEM_WORDS[head], Route("")
    if not rest and head.startswith("$"):
        return "system-operation", Route("", operation=head[1:])
    if head not in _TYPES:
        raise FhirError(404, "not-supported", f"Unknown resource type '{head}'")
    if not rest:
        return "type", Route("", head)
    if len(rest) == 1 and rest[0] in ("_history", "_search"):
        return f"type-{rest[0][1:]}", Route("", head)
    if len(rest) == 1 and rest[0].startswith("$"):
        return "type-operation", Route("", head, operation=rest[0][1:])
    if not is_valid_id(rest[0]):
        raise bad_request(f"Invalid resource id '{rest[0]}': ids match [A-Za-z0-9-.]{{1,64}}")
    instance = Route("", head, rest[0])
    match rest[1:]:
        case []:
            return "instance", instance
        case ["_history"]:
            return "instance-history", instance
        case ["_history", vid]:
            return "version", Route("", head, rest[0], vid=vid)
        case [word] if word.startswith("$"):
            return "instance-operation", Route("", head, rest[0], operation=word[1:])
        case [target] if target in _TYPES or target == "*":
            return "compartment", Route("", target, compartment=f"{head}/{rest[0]}")
    raise FhirError(404, "not-found", f"No FHIR endpoint at /{'/'.join(parts)}")


def parse_route(method: str, path: str) -> Route:
    """The interaction `method path` names: 404 unknown path or type, 400 malformed id, 405 method."""
    shape, route = _shape([p for p in path.split("/") if p])
    methods = INTERACTIONS_BY_SHAPE[shape]
    if method not in methods:
        raise FhirError(405, "not-supported", f"{method} is not allowed on /{path}",
                        headers={"Allow": ", ".join(methods)})
    return Route(methods[method], route.type, route.id, route.vid, route.operation, route.compartment)
