"""Search index extraction: a resource in, the `sp` sub-document of its stored form out.

`extract(resource_type, resource)` evaluates every search parameter of the type (the compiled
extractors from `paths`, the value indexers from `types`) and returns `{code: value}` for the
parameters that have values, plus `@compartment` (see `compartments`). The per-type plan is
built once and rebuilt when the registry's generation changes (a custom SearchParameter was
registered or removed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_server.search import compartments
from fhir_server.search.registry import registry
from fhir_server.search.types import composite
from fhir_server.search.types.by_name import MODULES

_Plan = list[tuple[str, Callable[[dict], Any]]]
_plans: dict[str, tuple[int, _Plan]] = {}


def _indexer(param: Any) -> Callable[[dict], Any] | None:
    path = param.path
    if path is None or param.column:
        return None
    if param.type == "composite":
        components = param.components

        def index_composite(resource: dict) -> Any:
            nodes = path.extract(resource)
            return composite.index(nodes, components, resource) if nodes else None
        return index_composite
    module = MODULES.get(param.type)
    if module is None:  # `special` parameters (near...) need their own engines
        return None
    index, extract, single = module.index, path.extract, param.single

    def index_value(resource: dict) -> Any:
        nodes = extract(resource)
        return index(nodes, single) if nodes else None
    return index_value


def _plan(resource_type: str) -> _Plan:
    reg = registry()
    cached = _plans.get(resource_type)
    if cached is not None and cached[0] == reg.generation:
        return cached[1]
    plan = [(code, fn) for code, param in sorted(reg.params(resource_type).items())
            if (fn := _indexer(param)) is not None]
    _plans[resource_type] = (reg.generation, plan)
    return plan


def extract(resource_type: str, resource: dict) -> dict:
    """The `sp` sub-document for `resource` (see docs/search.md for its layout)."""
    sp: dict[str, Any] = {}
    for code, index in _plan(resource_type):
        value = index(resource)
        if value is not None:
            sp[code] = value
    owners = compartments.memberships(resource_type, resource.get("id"), sp)
    if owners:
        sp[compartments.KEY] = owners
    return sp
