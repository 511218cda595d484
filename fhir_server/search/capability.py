"""What the CapabilityStatement says about search, generated from the live registry.

Per type: every parameter the engine evaluates (name, canonical definition, type,
documentation), the `_include` values (its reference parameters) and `_revinclude` values
(reference parameters of any type that may point at it); at system level the parameters every
type shares. Custom SearchParameters appear as soon as they are registered.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import Any

from fhir_server.definitions import resource_types
from fhir_server.search.registry import SearchParam, registry

Json = dict[str, Any]
_RESOURCE_BASES = frozenset({"Resource", "DomainResource"})


def searchable(param: SearchParam) -> bool:
    """Whether the engine evaluates `param` (special parameters and ones without a path do not)."""
    return param.type != "special" and (param.path is not None or param.column is not None)


def _entry(param: SearchParam) -> Json:
    entry: Json = {"name": param.code, "definition": param.url, "type": param.type}
    if param.definition.get("description"):
        entry["documentation"] = param.definition["description"]
    return entry


@cache
def _reverse(generation: int) -> dict[str, list[str]]:
    """`_revinclude` values per target type, for one registry generation."""
    out: dict[str, list[str]] = defaultdict(list)
    for source in resource_types():
        for code, param in sorted(registry().params(source).items()):
            if param.type == "reference" and searchable(param):
                for target in param.targets or resource_types():
                    out[target].append(f"{source}:{code}")
    return out


def type_search(resource_type: str) -> Json:
    """The `searchParam`, `searchInclude` and `searchRevInclude` of one CapabilityStatement resource."""
    params = [p for _, p in sorted(registry().params(resource_type).items()) if searchable(p)]
    out: Json = {}
    if params:
        out["searchParam"] = [_entry(p) for p in params]
    includes = [f"{resource_type}:{p.code}" for p in params if p.type == "reference"]
    if includes:
        out["searchInclude"] = ["*", *includes]
    reverse = _reverse(registry().generation).get(resource_type)
    if reverse:
        out["searchRevInclude"] = reverse
    return out


def system_search() -> Json:
    """The system-level `searchParam`s: the ones defined on every resource."""
    params = registry().params("Patient")
    common = [p for _, p in sorted(params.items())
              if searchable(p) and _RESOURCE_BASES & set(p.definition.get("base", ()))]
    return {"searchParam": [_entry(p) for p in common]}
