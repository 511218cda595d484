"""Running compiled searches against MongoDB: filters with access limits, keyset pages, counts.

A search runs over one or more collections (one per type; a system search names several),
each with its own compiled `Plan`. Every query here (the main one, chain and `_has`
sub-queries, counts, includes) is ANDed with the caller's access restriction for the
collection it reads, so nothing outside the caller's reach can be found, counted or inferred.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from fhir_server.search import compartments
from fhir_server.search.expand import Branch, branches
from fhir_server.search.indexes import leading_fields, selective_fields
from fhir_server.search.keyset import SortField, beyond, merge_key, position
from fhir_server.search.plan import NOT_DELETED, Plan, Restrict, resolve, restricted
from fhir_server.search.windows import gallop
from fhir_server.storage import Database, Session

Json = dict[str, Any]
T = TypeVar("T")
Hit = tuple[str, Json]
"""A found document with its type: `(resource_type, stored document)`."""
HIT_PROJECTION: Json = {"vid": 1, "ts": 1, "res": 1, f"sp.{compartments.KEY}": 1}
"""The fields a hit needs: its Bundle entry and, for the audit, its version and compartments."""


@dataclass(frozen=True)
class Page:
    """One page of hits in sort order, and whether more lie beyond it in the paging direction."""

    hits: list[Hit]
    more: bool
    complete: bool = False
    """The hits are every match (a first page with room to spare), so they are the total."""


class Runner:
    """Runs the queries of one search request with one caller's access and session."""

    def __init__(self, database: Database, restrict: Restrict | None, session: Session | None = None) -> None:
        self.database = database
        self.restrict = restrict
        self.session = session

    async def filter(self, plan: Plan) -> Json:
        """The final filter of `plan`: sub-queries resolved, access restriction applied."""
        resolved = await resolve(plan, self.database.db, self.restrict, self.session)
        return restricted(resolved, plan.resource_type, self.restrict)

    def find(self, resource_type: str, filter_: Json, projection: Json | None = None) -> Any:
        """A cursor over the live documents of `resource_type` matching `filter_` (access applied)."""
        # One flat document, not an `$and`: SecantusDB plans indexes for the simpler form only.
        live = {**filter_, **NOT_DELETED} if "del" not in filter_ else {"$and": [filter_, NOT_DELETED]}
        query = restricted(live, resource_type, self.restrict)
        return self.database.resources(resource_type).find(query, projection, session=self.session)

    async def count(self, filters: dict[str, Json]) -> int:
        """How many documents match, over every `type -> final filter`."""
        total = 0
        for resource_type, filter_ in filters.items():
            collection = self.database.resources(resource_type)
            parts = branches(filter_, selective_fields(resource_type))
            if len(parts) == 1 and parts[0].exact:
                total += await collection.count_documents(parts[0].filter, session=self.session)
                continue
            # Branches may overlap and need their residual checks: count the distinct ids.
            found = await self._each([self._ids(collection, part) for part in parts])
            total += len(set().union(*found))
        return total

    async def _ids(self, collection: Any, part: Branch) -> list[str]:
        docs = await collection.find(part.filter, _with_paths({"_id": 1}, part), session=self.session
                                     ).to_list(length=None)
        return [d["_id"] for d in docs if part.accepts(d)]

    async def _each(self, queries: list[Coroutine[Any, Any, T]]) -> list[T]:
        """The results of `queries`, run at once unless they share a session (which allows one at a time)."""
        if self.session is None:
            return list(await asyncio.gather(*queries))
        return [await query for query in queries]

    async def _first(self, resource_type: str, query: Json, spec: list[tuple[str, int]], fields: list[SortField],
                     projection: Json, limit: int) -> list[tuple[tuple, Hit]]:
        """The first `limit` documents in sort order: each index-friendly branch on its own, merged."""
        collection = self.database.resources(resource_type)
        parts = branches(query, selective_fields(resource_type))
        indexed = leading_fields(resource_type)
        found = await self._each([self._windowed(collection, part, spec, fields[0], indexed, projection, limit)
                                  for part in parts])
        runs = [[(merge_key(d, resource_type, fields), (resource_type, d)) for d in docs] for docs in found]
        seen: set[str] = set()
        out = []
        for key, hit in heapq.merge(*runs, key=lambda pair: pair[0]) if len(runs) > 1 else runs[0]:
            if hit[1]["_id"] not in seen:
                seen.add(hit[1]["_id"])
                out.append((key, hit))
        return out[:limit]

    async def _windowed(self, collection: Any, part: Branch, spec: list[tuple[str, int]], first: SortField,
                        indexed: frozenset[str], projection: Json, limit: int) -> list[Json]:
        """The first `limit` documents of one branch in sort order, read window by window of the
        first sort key where `windows` can lay them (else in one query)."""
        planned = gallop(part, first, indexed)
        if planned is None:
            return await self._sorted(collection, part, spec, projection, limit)
        plan, window = planned
        docs: list[Json] = []
        while window is not None:
            found = await self._sorted(collection, window.branch, spec, projection, limit - len(docs))
            docs += found
            if len(docs) >= limit:
                break
            window = plan.after(window, len(found), limit - len(docs))
        return docs

    async def _sorted(self, collection: Any, part: Branch, spec: list[tuple[str, int]], projection: Json,
                      limit: int) -> list[Json]:
        """The first `limit` documents of one branch in sort order that pass its residual checks."""
        cursor = collection.find(part.filter, _with_paths(projection, part), session=self.session).sort(spec)
        if part.exact:
            return await cursor.limit(limit).to_list(length=None)
        docs = []
        async for doc in cursor:
            if part.accepts(doc):
                docs.append(doc)
                if len(docs) >= limit:
                    break
        await cursor.close()
        return docs

    async def page(self, filters: dict[str, Json], fields: list[SortField], count: int, projection: Json,
                   anchor: Json | None = None, backwards: bool = False) -> Page:
        """Up to `count` hits after `anchor` (or, `backwards`, the `count` just before it)."""
        if count == 0:
            return Page([], False)
        if not filters:  # nothing to search (a `_contained` search whose matches lie in no container)
            return Page([], False, complete=anchor is None)
        if backwards and (len(filters) > 1 or not all(f.single for f in fields)):
            return await self._counted_before(filters, fields, count, projection, anchor)
        # With single-valued keys the reverse order is the order reversed (missing values last
        # instead of first, as MongoDB sorts them descending): a previous page is the next
        # page that way, read like one, and turned around.
        order = [replace(f, descending=not f.descending) for f in fields] if backwards else fields
        spec = [(f.path, -1 if f.descending else 1) for f in order]
        runs: list[list[tuple[tuple, Hit]]] = []
        for resource_type, filter_ in filters.items():
            query = filter_ if anchor is None else {"$and": [filter_, beyond(fields, anchor, resource_type,
                                                                            backwards)]}
            runs.append(await self._first(resource_type, query, spec, order, projection, count + 1))
        merged = _merged(runs)
        # Each branch ran with limit count + 1: fewer hits in all means no branch was cut short.
        more = len(merged) > count
        if backwards:
            return Page(merged[count - 1::-1], more)
        return Page(merged[:count], more, complete=anchor is None and not more)

    async def _counted_before(self, filters: dict[str, Json], fields: list[SortField], count: int, projection: Json,
                              anchor: Json | None) -> Page:
        """The `count` hits just before `anchor` where the order cannot be reversed (multi-valued
        keys sort by their lowest value one way, their highest the other; several types merge
        on the type name ascending): the matches before it are counted and skipped to the last
        `count`, exactly, as the count and the skip see the same anchor on the same data."""
        spec = [(f.path, -1 if f.descending else 1) for f in fields]
        runs: list[list[tuple[tuple, Hit]]] = []
        available = 0
        for resource_type, filter_ in filters.items():
            query = filter_ if anchor is None else {"$and": [filter_, beyond(fields, anchor, resource_type, True)]}
            collection = self.database.resources(resource_type)
            before = await collection.count_documents(query, session=self.session)
            available += before
            docs = await collection.find(query, projection, session=self.session).sort(spec).skip(
                max(0, before - count)).limit(count).to_list(length=None)
            runs.append([(merge_key(d, resource_type, fields), (resource_type, d)) for d in docs])
        merged = _merged(runs)
        return Page(merged[-count:], available > count)


def _merged(runs: list[list[tuple[tuple, Hit]]]) -> list[Hit]:
    """The hits of several runs, each in sort order, merged by their sort keys."""
    if len(runs) == 1:
        return [hit for _, hit in runs[0]]
    return [hit for _, hit in heapq.merge(*runs, key=lambda pair: pair[0])]


def _with_paths(projection: Json, part: Branch) -> Json:
    """`projection` plus the fields `part`'s residual checks read (MongoDB refuses a projection
    naming a field and one inside it, so only the outermost of those is kept)."""
    if not projection:  # everything is fetched already
        return projection
    paths = {*projection, *part.paths()}
    return {p: 1 for p in sorted(paths) if not any(p.startswith(q + ".") for q in paths)}


def boundary(hit: Hit, fields: list[SortField]) -> Json:
    """The keyset position of a hit, for a paging cursor."""
    resource_type, doc = hit
    return position(doc, resource_type, fields)
