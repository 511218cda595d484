"""Custom SearchParameter resources: stored ones are searchable, deleted ones no longer are.

A SearchParameter written over the API is checked before it is stored (it must name a url,
code, type and known base types, and its expression must be valid FHIRPath), then registered
in the search registry; deleting it unregisters it. `load_stored` registers the stored ones
at start-up. Values of existing resources are indexed for a new parameter by `$reindex`.
Every server process keeps its own registry: with several processes, the others learn of a
change at their next start.
"""

from __future__ import annotations

import contextlib
import logging

from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models

from fhir_server.definitions import resource_types
from fhir_server.fhir.outcome import unprocessable
from fhir_server.interactions import hooks
from fhir_server.interactions.model import Json
from fhir_server.search.registry import MODIFIERS, registry
from fhir_server.storage import Database, Version

log = logging.getLogger(__name__)
TYPE = "SearchParameter"
_BASES = frozenset({"Resource", "DomainResource"})
_registered: dict[str, str] = {}
"""Resource id -> the url registered for it (a delete carries no resource to read it from)."""


def check_definition(resource: Json) -> None:
    """422 unless `resource` is a SearchParameter this server can evaluate."""
    for element in ("url", "code", "type"):
        if not isinstance(resource.get(element), str):
            raise unprocessable(f"A SearchParameter needs {element} to be searchable", f"SearchParameter.{element}")
    if resource["type"] not in MODIFIERS or resource["type"] == "special":
        raise unprocessable(f"Search parameters of type {resource['type']!r} are not supported",
                            "SearchParameter.type")
    unknown = [b for b in resource.get("base") or [] if b not in resource_types() and b not in _BASES]
    if unknown or not resource.get("base"):
        raise unprocessable(f"SearchParameter.base must list resource types, not {unknown or 'nothing'}",
                            "SearchParameter.base")
    expression = resource.get("expression")
    if resource["type"] != "composite" and not isinstance(expression, str):
        raise unprocessable("A SearchParameter needs an expression to be searchable", "SearchParameter.expression")
    try:
        if expression:
            # fhirpathpy's parser is lenient: most syntax errors only show when evaluated.
            evaluate = compile_fhirpath(expression, models["r4"])
            for base in resource["base"]:
                evaluate({"resourceType": base if base not in _BASES else "Patient"})
    except Exception as error:  # fhirpathpy raises bare exceptions for syntax errors
        raise unprocessable(f"SearchParameter.expression is not valid FHIRPath: {error}",
                            "SearchParameter.expression") from error


def _usable(resource: Json) -> bool:
    try:
        check_definition(resource)
    except Exception:
        return False
    return resource.get("status") != "retired"


def apply(version: Version) -> None:
    """Register, replace or unregister the parameter `version` holds."""
    previous = _registered.pop(version.id, None)
    if previous is not None:
        with contextlib.suppress(KeyError):  # already gone
            registry().unregister(previous)
    if version.resource is not None and _usable(version.resource):
        registry().register(version.resource)
        _registered[version.id] = version.resource["url"]


async def load_stored(database: Database) -> int:
    """Register every stored, live SearchParameter; how many were registered."""
    cursor = database.resources(TYPE).find({"del": {"$exists": False}}, {"vid": 1, "ts": 1, "res": 1})
    loaded = 0
    async for doc in cursor:
        apply(Version(TYPE, doc["_id"], doc["vid"], doc["ts"], doc["res"]))
        loaded += doc["_id"] in _registered
    if loaded:
        log.info("registered %d custom search parameters", loaded)
    return loaded


hooks.check(TYPE, check_definition)
hooks.written(TYPE, apply)
