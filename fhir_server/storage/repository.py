"""The resource store: versioned FHIR resources on MongoDB.

Collections (details in `docs/storage.md`):
- one per resource type, named like the type, holding the current version of each resource:
  `{_id: id, vid: int, ts: datetime, res: {...}, sp: {...search index...}}`, or for a deleted
  resource the tombstone `{_id, vid, ts, del: true}`;
- `history`, every version: `{_id: "Type/id/vid", t, i, v, ts, m: method, res?, end?}` where
  `end` is when the version stopped being current (for `_at`).

Writes take the caller's session: every change of a resource and its history is one MongoDB
transaction, and a transaction Bundle is one transaction around many of them.
Optimistic concurrency: a write replaces the current document only if it still has the version
read at the start of the transaction; a racing writer makes the transaction retry (`WriteConflict`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir_server.fhir.primitives import format_instant, new_id, now
from fhir_server.storage.database import Database, Session, WriteConflict

Json = dict[str, Any]
Indexer = Callable[[str, Json], Json]

_CURRENT_PROJECTION = {"sp": 0}


@dataclass(frozen=True)
class Version:
    """One version of a resource: its resource JSON, or None when the version is a delete."""

    type: str
    id: str
    vid: int
    ts: datetime
    resource: Json | None
    method: str = "PUT"

    @property
    def deleted(self) -> bool:
        return self.resource is None


@dataclass(frozen=True)
class HistoryPage:
    """A page of history, newest first, and whether more versions lie beyond it in paging direction."""

    versions: list[Version]
    has_more: bool


def _from_current(resource_type: str, doc: Json) -> Version:
    return Version(resource_type, doc["_id"], doc["vid"], doc["ts"], doc.get("res"))


def _from_history(doc: Json) -> Version:
    return Version(doc["t"], doc["i"], doc["v"], doc["ts"], doc.get("res"), doc["m"])


def _stamp(resource: Json, resource_id: str, vid: int, ts: datetime) -> Json:
    """A copy of `resource` with the server-owned id and meta.versionId/lastUpdated."""
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    stamped = {"resourceType": resource["resourceType"], "id": resource_id,
               "meta": {"versionId": str(vid), "lastUpdated": format_instant(ts), **meta}}
    stamped.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
    return stamped


class ResourceStore:
    """Versioned resources of every type. `indexer(type, resource)` yields the search index."""

    def __init__(self, database: Database, indexer: Indexer | None = None) -> None:
        self.database = database
        self.indexer: Indexer = indexer or (lambda _type, _resource: {})

    async def read(self, resource_type: str, resource_id: str, session: Session | None = None) -> Version | None:
        """The current version (a deleted resource gives its tombstone version), or None."""
        doc = await self.database.resources(resource_type).find_one(
            {"_id": resource_id}, _CURRENT_PROJECTION, session=session)
        return _from_current(resource_type, doc) if doc else None

    async def read_version(self, resource_type: str, resource_id: str, vid: int,
                           session: Session | None = None) -> Version | None:
        doc = await self.database.history.find_one({"_id": f"{resource_type}/{resource_id}/{vid}"}, session=session)
        return _from_history(doc) if doc else None

    async def create(self, session: Session, resource_type: str, resource: Json) -> Version:
        """Store `resource` as version 1 under a new server-assigned id."""
        resource_id = new_id()
        return await self._write(session, resource_type, resource_id, resource, None, "POST")

    async def update(self, session: Session, resource_type: str, resource_id: str, resource: Json,
                     *, method: str = "PUT", if_match: int | None = None) -> tuple[Version, bool]:
        """Store a new version; returns it and whether it created the resource (or revived a deleted one).

        `if_match` is the version the client expects to be current: a mismatch raises
        `VersionMismatch` (HTTP 412).
        """
        current = await self._current_meta(session, resource_type, resource_id)
        if if_match is not None and (current is None or current.get("del") or current["vid"] != if_match):
            raise VersionMismatch(if_match, current["vid"] if current else None)
        version = await self._write(session, resource_type, resource_id, resource, current, method)
        return version, current is None or bool(current.get("del"))

    async def delete(self, session: Session, resource_type: str, resource_id: str) -> Version | None:
        """Record a delete; None when there is nothing (live) to delete."""
        current = await self._current_meta(session, resource_type, resource_id)
        if current is None or current.get("del"):
            return None
        return await self._write(session, resource_type, resource_id, None, current, "DELETE")

    async def history(self, resource_type: str | None, resource_id: str | None, *, count: int,
                      since: datetime | None = None, at: tuple[datetime, datetime] | None = None,
                      anchor: tuple[datetime, str] | None = None, backwards: bool = False) -> HistoryPage:
        """Versions newest first, paged by keyset on (ts, _id).

        `anchor` is the (ts, _id) of a version already shown: the page holds the versions just
        older than it, or with `backwards` just newer. Appends never shift a page boundary.
        """
        query: Json = {}
        if resource_type:
            query["t"] = resource_type
        if resource_id:
            query["i"] = resource_id
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
        docs = await cursor.to_list(length=count + 1)
        versions = [_from_history(d) for d in docs[:count]]
        return HistoryPage(versions[::-1] if backwards else versions, len(docs) > count)

    async def count_history(self, resource_type: str, resource_id: str) -> int:
        return await self.database.history.count_documents({"t": resource_type, "i": resource_id})

    async def find(self, resource_type: str, query: Json, limit: int,
                   session: Session | None = None) -> list[Version]:
        """Current, live resources of one type matching a MongoDB filter over the stored documents."""
        cursor = self.database.resources(resource_type).find(
            {"$and": [query, {"del": {"$ne": True}}]}, _CURRENT_PROJECTION, session=session).limit(limit)
        return [_from_current(resource_type, d) for d in await cursor.to_list(length=limit)]

    async def _current_meta(self, session: Session, resource_type: str, resource_id: str) -> Json | None:
        return await self.database.resources(resource_type).find_one(
            {"_id": resource_id}, {"vid": 1, "ts": 1, "del": 1}, session=session)

    async def _write(self, session: Session, resource_type: str, resource_id: str, resource: Json | None,
                     current: Json | None, method: str) -> Version:
        vid = current["vid"] + 1 if current else 1
        ts = now()
        if current and ts <= current["ts"]:
            # Keep lastUpdated strictly increasing per resource, so history order is version order.
            ts = current["ts"] + timedelta(milliseconds=1)
        collection = self.database.resources(resource_type)
        history: Json = {"_id": f"{resource_type}/{resource_id}/{vid}", "t": resource_type,
                         "i": resource_id, "v": vid, "ts": ts, "m": method}
        if resource is None:
            document: Json = {"_id": resource_id, "vid": vid, "ts": ts, "del": True}
        else:
            resource = _stamp(resource, resource_id, vid, ts)
            document = {"_id": resource_id, "vid": vid, "ts": ts, "res": resource,
                        "sp": self.indexer(resource_type, resource)}
            history["res"] = resource
        if current is None:
            await collection.insert_one(document, session=session)
        else:
            replaced = await collection.replace_one({"_id": resource_id, "vid": current["vid"]}, document,
                                                   session=session)
            if replaced.matched_count != 1:
                raise WriteConflict(f"{resource_type}/{resource_id} changed concurrently")
            await self.database.history.update_one(
                {"_id": f"{resource_type}/{resource_id}/{current['vid']}"}, {"$set": {"end": ts}}, session=session)
        await self.database.history.insert_one(history, session=session)
        return Version(resource_type, resource_id, vid, ts, resource, method)


class VersionMismatch(Exception):
    """`If-Match` named a version that is not the current one."""

    def __init__(self, expected: int, actual: int | None) -> None:
        super().__init__(f"expected version {expected}, current is {actual}")
        self.expected = expected
        self.actual = actual
