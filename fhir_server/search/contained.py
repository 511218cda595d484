"""`_contained` and `_containedType`: which collections a search runs on, and with which filters.

Contained resources are indexed in the `contained` collection (`storage.contained`) with the
same `sp` layout as top-level resources of their type, so a search's compiled filter runs there
unchanged, restricted to `t` (the contained type). `_contained=true` searches there only,
`both` there and in the type's own collection. With `_containedType=container` (the default)
the matches become filters on their containers' collections (`_id in [...]`), so the runner
pages, counts and deduplicates containers like any multi-collection search; with `contained`
the contained documents are the hits themselves.

Access: a contained match stands for its container, so it counts only where the caller may
read the container: the containers' collections are queried with the caller's restriction for
their type, like every other query (docs/search.md, Access).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fhir_server.search.errors import SearchError
from fhir_server.search.plan import MAX_SUBQUERY_IDS, NOT_DELETED, Plan, resolve, restricted
from fhir_server.search.runner import Runner
from fhir_server.storage.contained import CONTAINED, container_of

Json = dict[str, Any]


async def search_filters(runner: Runner, plans: dict[str, Plan], contained: str | None,
                         contained_type: str | None) -> dict[str, Json]:
    """The final filter per collection searched, for `_contained` (None: false) and `_containedType`.

    With `_contained` true or both, `plans` holds one type (the caller checks).
    """
    if contained in (None, "false"):
        return {t: await runner.filter(plan) for t, plan in plans.items()}
    ((resource_type, plan),) = plans.items()
    resolved = await resolve(plan, runner.database.db, runner.restrict, runner.session)
    out = {resource_type: restricted(resolved, resource_type, runner.restrict)} if contained == "both" else {}
    inner = {**resolved, "t": resource_type}
    if contained_type == "contained":
        if runner.restrict is not None:
            inner["c"] = {"$in": await _readable(runner, await _containers(runner, inner))}
        out[CONTAINED] = inner
        return out
    for container_type, ids in (await _containers(runner, inner)).items():
        found = restricted({"_id": {"$in": ids}, **NOT_DELETED}, container_type, runner.restrict)
        out[container_type] = {"$or": [out[container_type], found]} if container_type in out else found
    return out


async def _containers(runner: Runner, inner: Json) -> dict[str, list[str]]:
    """The ids of the containers of the contained documents `inner` matches, per container type."""
    refs: dict[str, None] = {}
    async for doc in runner.database.collection(CONTAINED).find(inner, {"c": 1}, session=runner.session):
        refs[doc["c"]] = None
        if len(refs) > MAX_SUBQUERY_IDS:
            raise SearchError("_contained", f"the contained matches lie in over {MAX_SUBQUERY_IDS} resources; "
                              "narrow the search")
    by_type: dict[str, list[str]] = defaultdict(list)
    for ref in refs:
        container_type, container_id = container_of(ref)
        by_type[container_type].append(container_id)
    return by_type


async def _readable(runner: Runner, containers: dict[str, list[str]]) -> list[str]:
    """Those of `containers` the caller may read, as `Type/id` references."""
    refs = []
    for container_type, ids in containers.items():
        if runner.restrict(container_type) is None:  # unrestricted: every live container (they all are)
            refs += [f"{container_type}/{i}" for i in ids]
            continue
        cursor = runner.find(container_type, {"_id": {"$in": ids}}, {"_id": 1})
        refs += [f"{container_type}/{doc['_id']}" async for doc in cursor]
    return refs
