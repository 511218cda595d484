"""The resource store: versioned FHIR resources on MongoDB.

Collections (details in `docs/storage.md`):
- one per resource type, named like the type, holding the current version of each resource:
  `{_id: id, vid: int, ts: datetime, res: {...}, sp: {...search index...}}`, or for a deleted
  resource the tombstone `{_id, vid, ts, del: true}`;
- `history`, one entry per version: `{_id: "Type/id/vid", t, i, v, ts, m: method, res?, end?}`.
  The entry of the current version is a stub without `res` (the resource is in the type's
  collection); when a version is superseded its entry receives `res` and `end`, the time it
  stopped being current (for `_at`). A create thus writes the resource once;
- `contained`, the search index of the resources inside current versions' `contained`
  (`storage.contained`), replaced with each version of their container.

Writes take the caller's session: every change of a resource and its history is one MongoDB
transaction, and a transaction Bundle is one transaction around many of them.
Optimistic concurrency: a write replaces the current document only if it still has the version
read at the start of the transaction; a racing writer makes the transaction retry (`WriteConflict`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReplaceOne, ReturnDocument, UpdateOne

from fhir_server.fhir.primitives import format_instant, new_id, now
from fhir_server.storage.contained import CONTAINED, contained_documents, container_ref, has_contained
from fhir_server.storage.database import HISTORY, Database, Session, WriteConflict
from fhir_server.storage.group_commit import GroupCommit
from fhir_server.storage.windows import history_page

Json = dict[str, Any]
Indexer = Callable[[str, Json], Json]
SideWrites = Callable[["Version"], list[tuple[str, Json]]]
"""Given a version just written, documents (collection, document) to insert in the same transaction."""
NewItem = tuple[str, Json, SideWrites | None, str | None]
"""A resource to create: (type, resource, side writes, id or None for a server-assigned one)."""


class PendingWrites:
    """Writes made later in a transaction: updates (one `bulk_write` per collection), removals
    (one `delete_many` each), then inserts (one `insert_many` per collection).

    On SecantusDB a write costs mostly per command, so a transaction Bundle's creates and updates
    are staged here and written together instead of three or four round trips each.
    """

    def __init__(self) -> None:
        self.documents: dict[str, list[Json]] = defaultdict(list)
        self.operations: dict[str, list[ReplaceOne | UpdateOne]] = defaultdict(list)
        self.removals: list[tuple[str, Json]] = []
        self.known: dict[tuple[str, str], Json | None] = {}
        """Current documents fetched ahead for resources the transaction will write (None: absent)."""

    def take_known(self, resource_type: str, resource_id: str) -> tuple[bool, Json | None]:
        """Whether the current document of a resource was fetched ahead, and it (used once)."""
        key = (resource_type, resource_id)
        return (True, self.known.pop(key)) if key in self.known else (False, None)

    def add(self, collection: str, document: Json) -> None:
        self.documents[collection].append(document)

    def add_operation(self, collection: str, operation: ReplaceOne | UpdateOne) -> None:
        self.operations[collection].append(operation)

    def remove(self, collection: str, filter_: Json) -> None:
        """Delete what `filter_` matches in `collection`, before the inserts (which may replace it)."""
        self.removals.append((collection, filter_))

    async def flush(self, database: Database, session: Session) -> None:
        """Write everything staged (in `session`'s transaction) and start empty again.

        Every staged update names the version it replaces: one that matches nothing means a
        concurrent writer got there first (`WriteConflict`, the transaction is retried).
        """
        inserts, self.documents = self.documents, defaultdict(list)
        operations, self.operations = self.operations, defaultdict(list)
        removals, self.removals = self.removals, []
        for collection, batch in operations.items():
            result = await database.collection(collection).bulk_write(batch, ordered=False, session=session)
            if result.matched_count != len(batch):
                raise WriteConflict(f"{len(batch) - result.matched_count} {collection} documents changed concurrently")
        for collection, filter_ in removals:
            await database.collection(collection).delete_many(filter_, session=session)
        for collection, documents in inserts.items():
            await database.collection(collection).insert_many(documents, ordered=False, session=session)


@dataclass(frozen=True)
class Version:
    """One version of a resource: its resource JSON, or None when the version is a delete."""

    type: str
    id: str
    vid: int
    ts: datetime
    resource: Json | None
    method: str = "PUT"
    compartments: tuple[str, ...] = ()
    """The compartments (`Patient/123`...) this version belongs to, where the store knows them."""
    index: Json | None = field(default=None, repr=False, compare=False)
    """On a version just written: the search index (`sp`) the store computed for it."""
    replaced: Json | None = field(default=None, repr=False, compare=False)
    """On a version just written: the resource of the live version it superseded (None: it replaced
    nothing, or a deletion), for the side writes' access check."""

    @property
    def deleted(self) -> bool:
        return self.resource is None


@dataclass(frozen=True)
class HistoryPage:
    """A page of history, newest first, and whether more versions lie beyond it in paging direction."""

    versions: list[Version]
    has_more: bool


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _from_history(doc: Json) -> Version:
    return Version(doc["t"], doc["i"], doc["v"], doc["ts"], doc.get("res"), doc["m"])


def _is_current_stub(doc: Json) -> bool:
    return "res" not in doc and doc["m"] != "DELETE"


def _history_id(resource_type: str, resource_id: str, vid: int) -> str:
    return f"{resource_type}/{resource_id}/{vid}"


def _stamp(resource: Json, resource_id: str, vid: int, ts: datetime) -> Json:
    """A copy of `resource` with the server-owned id and meta.versionId/lastUpdated."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    stamped = {"resourceType": resource["resourceType"], "id": resource_id,
               "meta": {"versionId": str(vid), "lastUpdated": format_instant(ts), **meta}}
    stamped.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
    return stamped


class ResourceStore:
    """Versioned resources of every type.

    `indexer(type, resource)` yields the search index stored beside each resource;
    `membership_field` names the index entry listing the resource's compartments, which reads
    return with each version (access control and audit need them on every request).
    """

    def __init__(self, database: Database, indexer: Indexer | None = None, membership_field: str | None = None
                 ) -> None:
        self.database = database
        self.indexer: Indexer = indexer or (lambda _type, _resource: {})
        self.membership_field = membership_field
        self.projection: Json = {"vid": 1, "ts": 1, "res": 1, "del": 1}
        if membership_field:
            self.projection[f"sp.{membership_field}"] = 1
        self.creates: GroupCommit[NewItem, Version] = GroupCommit(
            database, self._create_batch)

    async def read(self, resource_type: str, resource_id: str, session: Session | None = None) -> Version | None:
        """The current version (a deleted resource gives its tombstone version), or None."""
        doc = await self.database.resources(resource_type).find_one(
            {"_id": resource_id}, self.projection, session=session)
        return self._from_current(resource_type, doc) if doc else None

    async def read_version(self, resource_type: str, resource_id: str, vid: int,
                           session: Session | None = None) -> Version | None:
        doc = await self.database.history.find_one({"_id": _history_id(resource_type, resource_id, vid)},
                                                   session=session)
        if doc is None:
            # Log resources (`append_log`) have one version and no history entry.
            current = await self.read(resource_type, resource_id, session) if vid == 1 else None
            return current if current is not None and current.vid == 1 else None
        return (await self._with_resources([doc], session))[0]

    async def append_log(self, session: Session, resource_type: str, resources: list[Json]) -> list[Version]:
        """Store immutable, server-written resources (AuditEvents) under the ids they carry.

        They never change, so they get no history entries: a log append costs one indexed
        insert per resource instead of two.
        """
        ts = now()
        versions = [Version(resource_type, r["id"], 1, ts, _stamp(r, r["id"], 1, ts), "POST") for r in resources]
        await self.database.resources(resource_type).insert_many(
            [{"_id": v.id, "vid": 1, "ts": ts, "res": v.resource, "sp": self.indexer(resource_type, v.resource)}
             for v in versions], ordered=False, session=session)
        return versions

    async def create(self, session: Session | None, resource_type: str, resource: Json,
                     side: SideWrites | None = None, *, resource_id: str | None = None,
                     pending: PendingWrites | None = None) -> Version:
        """Store `resource` as version 1 under `resource_id`, or a new server-assigned id.

        Without a session the create joins the next group commit (its own transaction, shared
        with concurrent creates); with one it is written inside the caller's transaction, or,
        given `pending`, added to the inserts the caller flushes later in that transaction.
        `side` documents are written in the same transaction as the resource.
        """
        item = (resource_type, resource, side, resource_id)
        if session is None:
            return await self.creates.submit(item)
        if pending is not None:
            return self.stage_new(pending, [item])[0]
        return (await self._create_batch(session, [item]))[0]

    async def _create_batch(self, session: Session, items: list[NewItem]) -> list[Version]:
        pending = PendingWrites()
        versions = self.stage_new(pending, items)
        await pending.flush(self.database, session)
        return versions

    async def insert_side(self, session: Session, documents: list[tuple[str, Json]]) -> None:
        """Insert side documents (audit records...) in the caller's transaction, one insert per collection."""
        pending = PendingWrites()
        for collection, document in documents:
            pending.add(collection, document)
        await pending.flush(self.database, session)

    def stage_new(self, pending: PendingWrites, items: list[NewItem], method: str = "POST") -> list[Version]:
        """Versions 1 of new resources (under their given id, else a fresh one), their history
        entries and side documents added to `pending`: nothing is written yet."""
        versions = []
        for resource_type, resource, side, given_id in items:
            document, version, inner = self._next_version(resource_type, given_id or new_id(), resource, None, method)
            versions.append(version)
            pending.add(resource_type, document)
            for contained in inner:
                pending.add(CONTAINED, contained)
            _stage_history_and_side(pending, version, side)
        return versions

    async def update(self, session: Session, resource_type: str, resource_id: str, resource: Json,
                     *, method: str = "PUT", if_match: int | None = None, side: SideWrites | None = None,
                     pending: PendingWrites | None = None) -> tuple[Version, bool]:
        """Store a new version; returns it and whether it created the resource (or revived a deleted one).

        `if_match` is the version the client expects to be current: a mismatch raises
        `VersionMismatch` (HTTP 412). With `pending` holding the resource's metadata fetched ahead
        (`fetch_known`), a resource that does not exist yet is staged there, not written.
        """
        known, current = pending.take_known(resource_type, resource_id) if pending else (False, None)
        if not known:
            current = await self._current_meta(session, resource_type, resource_id)
        if if_match is not None and (current is None or current.get("del") or current["vid"] != if_match):
            raise VersionMismatch(if_match, current["vid"] if current else None)
        if known and current is None:
            return self.stage_new(pending, [(resource_type, resource, side, resource_id)], method)[0], True
        if known:
            version = self._stage_replace(pending, resource_type, resource_id, resource, current, method, side)
        else:
            version = await self._write(session, resource_type, resource_id, resource, current, method, side)
        return version, current is None or bool(current.get("del"))

    async def fetch_known(self, session: Session, pending: PendingWrites, targets: list[tuple[str, str]]) -> None:
        """Fetch the current documents of the resources `targets` names, one query per type, into `pending`."""
        by_type: dict[str, list[str]] = defaultdict(list)
        for resource_type, resource_id in targets:
            by_type[resource_type].append(resource_id)
        for resource_type, ids in by_type.items():
            cursor = self.database.resources(resource_type).find(
                {"_id": {"$in": ids}}, {**self._meta_projection, "res": 1}, session=session)
            found = {doc["_id"]: doc for doc in await cursor.to_list(length=None)}
            pending.known.update(((resource_type, i), found.get(i)) for i in ids)

    async def delete(self, session: Session, resource_type: str, resource_id: str,
                     side: SideWrites | None = None) -> Version | None:
        """Record a delete; None when there is nothing (live) to delete."""
        current = await self._current_meta(session, resource_type, resource_id)
        if current is None or current.get("del"):
            return None
        return await self._write(session, resource_type, resource_id, None, current, "DELETE", side)

    async def history(self, resource_type: str | None, resource_id: str | None, *, count: int,
                      since: datetime | None = None, at: tuple[datetime, datetime] | None = None,
                      anchor: tuple[datetime, str] | None = None, backwards: bool = False) -> HistoryPage:
        """Versions newest first, paged by keyset on (ts, _id).

        `anchor` is the (ts, _id) of a version already shown: the page holds the versions just
        older than it, or with `backwards` just newer. Appends never shift a page boundary.
        Type and system pages are read through windows of time (`windows`), except with `at`
        (and a backwards page without anchor, which the API never asks for).
        """
        if resource_id is None and at is None and (anchor or not backwards):
            fixed = {"t": resource_type} if resource_type else {}
            docs = await history_page(self.database.history, fixed, count + 1, descending=not backwards,
                                      anchor=anchor, since=since)
            return await self._page(docs, count, backwards)
        query: Json = {}
        if resource_id:
            # A range on _id ("Type/id/" up to "Type/id0") finds one resource's versions.
            prefix = f"{resource_type}/{resource_id}/"
            query["_id"] = {"$gte": prefix, "$lt": prefix[:-1] + "0"}
        elif resource_type:
            query["t"] = resource_type
        if since:
            query["ts"] = {"$gte": since}
        if at:
            query.setdefault("ts", {})["$lt"] = at[1]
            query["$or"] = [{"end": {"$exists": False}}, {"end": {"$gt": at[0]}}]
        order = 1 if backwards else -1
        if anchor:
            ts, last_id = anchor
            beyond = "$gt" if backwards else "$lt"
            query = {"$and": [query, {"$or": [{"ts": {beyond: ts}}, {"ts": ts, "_id": {beyond: last_id}}]}]}
        cursor = self.database.history.find(query).sort([("ts", order), ("_id", order)]).limit(count + 1)
        return await self._page(await cursor.to_list(length=count + 1), count, backwards)

    async def _page(self, docs: list[Json], count: int, backwards: bool) -> HistoryPage:
        """The page of the first `count` of `docs` (read in paging order, one more to tell if more lie beyond)."""
        versions = await self._with_resources(docs[:count], None)
        return HistoryPage(versions[::-1] if backwards else versions, len(docs) > count)

    async def count_history(self, resource_type: str, resource_id: str) -> int:
        prefix = f"{resource_type}/{resource_id}/"
        return await self.database.history.count_documents({"_id": {"$gte": prefix, "$lt": prefix[:-1] + "0"}})

    async def find(self, resource_type: str, query: Json, limit: int,
                   session: Session | None = None) -> list[Version]:
        """Current, live resources of one type matching a MongoDB filter over the stored documents."""
        cursor = self.database.resources(resource_type).find(
            {"$and": [query, {"del": {"$ne": True}}]}, self.projection, session=session).limit(limit)
        return [self._from_current(resource_type, d) for d in await cursor.to_list(length=limit)]

    async def find_in_id_order(self, resource_type: str, query: Json, limit: int, after: str | None = None,
                               session: Session | None = None) -> list[Version]:
        """Like `find`, in id order, from just after id `after`: keyset pages over one type."""
        clauses = [query, {"del": {"$ne": True}}]
        if after is not None:
            clauses.append({"_id": {"$gt": after}})
        cursor = self.database.resources(resource_type).find(
            {"$and": clauses}, self.projection, session=session).sort("_id", 1).limit(limit)
        return [self._from_current(resource_type, d) for d in await cursor.to_list(length=limit)]

    async def count(self, resource_type: str, query: Json, session: Session | None = None) -> int:
        """How many current, live resources of one type match a MongoDB filter."""
        return await self.database.resources(resource_type).count_documents(
            {"$and": [query, {"del": {"$ne": True}}]}, session=session)

    def _from_current(self, resource_type: str, doc: Json) -> Version:
        """A version from a stored current document (read with `self.projection`)."""
        return Version(resource_type, doc["_id"], doc["vid"], doc["ts"], doc.get("res"),
                       compartments=self._memberships(doc.get("sp")))

    def _memberships(self, index: Json | None) -> tuple[str, ...]:
        return _as_tuple((index or {}).get(self.membership_field)) if self.membership_field else ()

    async def _with_resources(self, docs: list[Json], session: Session | None) -> list[Version]:
        """History entries as versions, filling the current versions' stubs from the type collections."""
        stubs: dict[str, list[str]] = defaultdict(list)
        for doc in docs:
            if _is_current_stub(doc):
                stubs[doc["t"]].append(doc["i"])
        current: dict[tuple[str, str], Json] = {}
        for resource_type, ids in stubs.items():
            cursor = self.database.resources(resource_type).find({"_id": {"$in": ids}}, {"vid": 1, "res": 1},
                                                                 session=session)
            current.update(((resource_type, d["_id"]), d) for d in await cursor.to_list(length=None))
        versions = []
        for doc in docs:
            version = _from_history(doc)
            if _is_current_stub(doc):
                holder = current.get((doc["t"], doc["i"]))
                if holder is not None and holder["vid"] == doc["v"]:
                    version = replace(version, resource=holder["res"])
                else:  # superseded since the history query: its entry now holds the resource
                    version = _from_history(await self.database.history.find_one({"_id": doc["_id"]},
                                                                                 session=session))
            versions.append(version)
        return versions

    @property
    def _meta_projection(self) -> Json:
        projection = {"vid": 1, "ts": 1, "del": 1}
        if self.membership_field:
            projection[f"sp.{self.membership_field}"] = 1
        return projection

    async def _current_meta(self, session: Session, resource_type: str, resource_id: str) -> Json | None:
        return await self.database.resources(resource_type).find_one({"_id": resource_id}, self._meta_projection,
                                                                     session=session)

    def _next_version(self, resource_type: str, resource_id: str, resource: Json | None, current: Json | None,
                      method: str) -> tuple[Json, Version, list[Json]]:
        """The current-version document, the `Version` that follow `current` (None: a first version)
        and the contained-index documents of its contained resources."""
        vid = current["vid"] + 1 if current else 1
        ts = now()
        if current and ts <= current["ts"]:
            # Keep lastUpdated strictly increasing per resource, so history order is version order.
            ts = current["ts"] + timedelta(milliseconds=1)
        if resource is None:
            document: Json = {"_id": resource_id, "vid": vid, "ts": ts, "del": True}
            # A deletion concerns the compartments the resource was in.
            compartments = self._memberships((current or {}).get("sp"))
            inner: list[Json] = []
        else:
            resource = _stamp(resource, resource_id, vid, ts)
            index = self.indexer(resource_type, resource)
            document = {"_id": resource_id, "vid": vid, "ts": ts, "res": resource, "sp": index}
            compartments = self._memberships(index)
            inner = contained_documents(resource, vid, ts, index, self.indexer, self.membership_field)
        return document, Version(resource_type, resource_id, vid, ts, resource, method, compartments,
                                 index=document.get("sp")), inner

    async def _write(self, session: Session, resource_type: str, resource_id: str, resource: Json | None,
                     current: Json | None, method: str, side: SideWrites | None = None) -> Version:
        document, version, inner = self._next_version(resource_type, resource_id, resource, current, method)
        collection = self.database.resources(resource_type)
        index = self.database.collection(CONTAINED)
        if current is None:
            await collection.insert_one(document, session=session)
        else:
            previous = await collection.find_one_and_replace(
                {"_id": resource_id, "vid": current["vid"]}, document, projection={"res": 1},
                return_document=ReturnDocument.BEFORE, session=session)
            if previous is None:
                raise WriteConflict(f"{resource_type}/{resource_id} changed concurrently")
            version = replace(version, replaced=previous.get("res"))
            await self.database.history.update_one(*_superseding(version, current["vid"], previous), session=session)
            if has_contained(previous.get("res")):
                await index.delete_many({"c": container_ref(resource_type, resource_id)}, session=session)
        if inner:
            await index.insert_many(inner, session=session)
        await self.database.history.insert_one(_history_stub(version), session=session)
        if side:
            await self.insert_side(session, side(version))
        return version

    def _stage_replace(self, pending: PendingWrites, resource_type: str, resource_id: str, resource: Json,
                       current: Json, method: str, side: SideWrites | None) -> Version:
        """Stage a new version replacing `current` (fetched ahead with its resource) in `pending`."""
        document, version, inner = self._next_version(resource_type, resource_id, resource, current, method)
        version = replace(version, replaced=current.get("res"))
        pending.add_operation(resource_type, ReplaceOne({"_id": resource_id, "vid": current["vid"]}, document))
        pending.add_operation(HISTORY, UpdateOne(*_superseding(version, current["vid"], current)))
        if has_contained(current.get("res")):
            pending.remove(CONTAINED, {"c": container_ref(resource_type, resource_id)})
        for contained in inner:
            pending.add(CONTAINED, contained)
        _stage_history_and_side(pending, version, side)
        return version


def _stage_history_and_side(pending: PendingWrites, version: Version, side: SideWrites | None) -> None:
    pending.add(HISTORY, _history_stub(version))
    for collection, document in side(version) if side else ():
        pending.add(collection, document)


def _history_stub(version: Version) -> Json:
    """The history entry of a new current version (its resource stays in the type's collection)."""
    return {"_id": _history_id(version.type, version.id, version.vid), "t": version.type, "i": version.id,
            "v": version.vid, "ts": version.ts, "m": version.method}


def _superseding(version: Version, previous_vid: int, previous: Json) -> tuple[Json, Json]:
    """(filter, update) giving the superseded version's history entry its resource and end time."""
    superseded: Json = {"end": version.ts}
    if "res" in previous:
        superseded["res"] = previous["res"]
    return {"_id": _history_id(version.type, version.id, previous_vid)}, {"$set": superseded}


class VersionMismatch(Exception):
    """`If-Match` named a version that is not the current one."""

    def __init__(self, expected: int, actual: int | None) -> None:
        super().__init__(f"expected version {expected}, current is {actual}")
        self.expected = expected
        self.actual = actual
