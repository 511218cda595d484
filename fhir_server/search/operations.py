"""`$reindex` (system and type level, POST): rebuild the search index of stored resources.

Needed after a custom SearchParameter is added, changed or removed, since values are indexed
at write time. Each live document's `sp` is recomputed from its resource and written back only
if the document still holds the version read, so a concurrent write (which indexes itself) is
never overwritten with stale values. The contained resources of the type (`storage.contained`)
are reindexed the same way, keeping their containers' compartments, and the type's resources
stored with contained resources before those were indexed get their documents. Answers a
Parameters resource with the count per type.
Reindexing a type needs the right to update it; at system level, the types the caller may not
update are skipped and named in the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo import UpdateOne

from fhir_server.definitions import resource_types
from fhir_server.fhir.outcome import FhirError
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.operations.parameters import operation_parameters
from fhir_server.operations.registry import operation
from fhir_server.search import compartments
from fhir_server.search.extract import extract
from fhir_server.storage.contained import CONTAINED, contained_index, restore

DEFINITION = "https://medicalcycle.example/fhir/OperationDefinition/reindex"
BATCH = 500


async def reindex_type(ctx: Context, resource_type: str) -> int:
    """Recompute `sp` for every live `resource_type` document and every contained one, and add the
    contained documents missing for the type's resources; how many were written."""
    collection = ctx.database.resources(resource_type)
    top = await _reindex(collection, {"del": {"$exists": False}}, lambda doc: extract(resource_type, doc["res"]))
    restored = 0
    async for container in collection.find({"del": {"$exists": False}, "res.contained": {"$exists": True}},
                                           {"vid": 1, "ts": 1, "res": 1, "sp": 1}):
        restored += await restore(ctx.database, resource_type, container, extract, compartments.KEY)
    inner = await _reindex(ctx.database.collection(CONTAINED), {"t": resource_type}, lambda doc: contained_index(
        doc["res"], doc["sp"].get(compartments.KEY), extract, compartments.KEY))
    return top + restored + inner


async def _reindex(collection: Any, query: Json, index: Callable[[Json], Json]) -> int:
    """Set `sp` to `index(doc)` on the documents `query` finds, where it changed and `vid` did not."""
    changed = 0
    batch: list[UpdateOne] = []
    async for doc in collection.find(query, {"vid": 1, "res": 1, "sp": 1}):
        sp = index(doc)
        if sp != doc.get("sp"):
            batch.append(UpdateOne({"_id": doc["_id"], "vid": doc["vid"]}, {"$set": {"sp": sp}}))
        if len(batch) >= BATCH:
            changed += (await collection.bulk_write(batch, ordered=False)).modified_count
            batch = []
    if batch:
        changed += (await collection.bulk_write(batch, ordered=False)).modified_count
    return changed


def _may_update(ctx: Context, resource_type: str) -> bool:
    try:
        ctx.access.require("update", resource_type)
    except FhirError:
        return False
    return True


@operation("reindex", levels={"system", "type"}, affects_state=True, definition=DEFINITION)
async def reindex(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    """Rebuild the search index of one type, or of every type."""
    unexpected = [name for name, _ in operation_parameters(req)]
    if unexpected:
        raise FhirError(400, "invalid", f"$reindex takes no parameters, got '{unexpected[0]}'", unexpected[0])
    if route.type:
        ctx.access.require("update", route.type)
        types, skipped = [route.type], []
    else:
        # At system level, the types the caller may update (AuditEvent only for a scope naming it).
        types, skipped = [], []
        for resource_type in resource_types():
            (types if _may_update(ctx, resource_type) else skipped).append(resource_type)
    parameters: list[Json] = []
    for resource_type in types:
        count = await reindex_type(ctx, resource_type)
        if route.type or count:
            parameters.append({"name": "reindexed", "part": [
                {"name": "type", "valueCode": resource_type}, {"name": "count", "valueInteger": count}]})
    parameters.extend({"name": "skipped", "valueCode": t} for t in skipped)
    result: Json = {"resourceType": "Parameters"}
    if parameters:
        result["parameter"] = parameters
    return FhirResponse(200, result)
