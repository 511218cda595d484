"""The index of contained resources: one document per resource inside a live resource's `contained`.

`{_id: "MedicationRequest/1#med", t: "Medication", c: "MedicationRequest/1", vid, ts, res, sp}`:
`t` is the contained resource's type, `c` its container, `vid`/`ts` the container's version and
time, `res` the contained resource as stored, `sp` its search index computed by the same
indexer as top-level resources of its type, except that its compartments are the container's
(a contained resource has no life of its own: it belongs where its container does).

The documents follow the container's current version: the store writes them in the same
transaction as the container, and a new version or a delete first removes the old ones.
`restore` adds the documents of a container stored before they existed (`$reindex`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo.errors import BulkWriteError

from fhir_server.storage.errors import only_duplicate_keys

Json = dict[str, Any]

CONTAINED = "contained"


def container_ref(resource_type: str, resource_id: str) -> str:
    return f"{resource_type}/{resource_id}"


def container_of(key: str) -> tuple[str, str]:
    """The container's type and id, from a contained document's `_id` (`Type/id#cid`) or `c`."""
    resource_type, _, resource_id = key.partition("#")[0].partition("/")
    return resource_type, resource_id


def has_contained(resource: Json | None) -> bool:
    return bool(resource and resource.get("contained"))


def contained_index(inner: Json, memberships: Any, indexer: Callable[[str, Json], Json],
                    membership_field: str | None) -> Json:
    """The `sp` of contained resource `inner`: its own values, its container's `memberships`."""
    sp = indexer(inner["resourceType"], inner)
    if membership_field:
        sp.pop(membership_field, None)
        if memberships:
            sp[membership_field] = memberships
    return sp


def contained_documents(container: Json, vid: int, ts: Any, index: Json,
                        indexer: Callable[[str, Json], Json], membership_field: str | None) -> list[Json]:
    """The contained-index documents of `container` (stamped, at version `vid`) whose own index is `index`."""
    ref = container_ref(container["resourceType"], container["id"])
    memberships = index.get(membership_field) if membership_field else None
    documents: dict[str, Json] = {}
    for inner in container.get("contained") or ():
        if not isinstance(inner, dict) or not inner.get("resourceType") or not inner.get("id"):
            continue  # validation refuses these; nothing to find them by anyway
        key = f"{ref}#{inner['id']}"
        if key in documents:  # a repeated local id (invalid): the first one is what `#id` resolves to
            continue
        sp = contained_index(inner, memberships, indexer, membership_field)
        documents[key] = {"_id": key, "t": inner["resourceType"], "c": ref, "vid": vid, "ts": ts, "res": inner,
                          "sp": sp}
    return list(documents.values())


async def restore(database: Any, resource_type: str, container: Json, indexer: Callable[[str, Json], Json],
                  membership_field: str | None) -> int:
    """Insert the missing documents of `container` (a stored current document with `vid`, `ts`,
    `res`, `sp`); how many were inserted.

    Outside a transaction, so a concurrent new version may have replaced the container meanwhile:
    its own write inserts its documents (a clash on `_id` leaves them be) and removes the older
    ones (if it committed after this insert); if it committed before, the check that follows
    finds the container changed and removes what was inserted here.
    """
    documents = contained_documents(container["res"], container["vid"], container["ts"], container.get("sp") or {},
                                    indexer, membership_field)
    ref = container_ref(resource_type, container["_id"])
    index = database.collection(CONTAINED)
    present = {doc["_id"] async for doc in index.find({"c": ref}, {"_id": 1})}
    missing = [d for d in documents if d["_id"] not in present]
    if not missing:
        return 0
    try:
        inserted = len((await index.insert_many(missing, ordered=False)).inserted_ids)
    except BulkWriteError as error:
        if not only_duplicate_keys(error):
            raise
        inserted = error.details.get("nInserted", 0)  # the others were written meanwhile by a new version
    if await database.resources(resource_type).count_documents({"_id": container["_id"], "vid": container["vid"]}) == 0:
        await index.delete_many({"c": ref, "vid": container["vid"]})
        return 0
    return inserted
