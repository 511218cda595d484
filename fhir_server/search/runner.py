"""Running compiled searches against MongoDB: filters with access limits, keyset pages, counts.

A search runs over one or more collections (one per type; a system search names several),
each with its own compiled `Plan`. Every query here (the main one, chain and `_has`
sub-queries, counts, includes) is ANDed with the caller's access restriction for the
collection it reads, so nothing outside the caller's reach can be found, counted or inferred.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from fhir_server.search.keyset import SortField, beyond, merge_key, position
from fhir_server.search.plan import NOT_DELETED, Plan, Restrict, resolve, restricted
from fhir_server.storage import Database, Session

Json = dict[str, Any]
Hit = tuple[str, Json]
"""A found document with its type: `(resource_type, stored document)`."""


@dataclass(frozen=True)
class Page:
    """One page of hits in sort order, and whether more lie beyond it in the paging direction."""

    hits: list[Hit]
    more: bool


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
        query = restricted({"$and": [filter_, NOT_DELETED]}, resource_type, self.restrict)
        return self.database.resources(resource_type).find(query, projection, session=self.session)

    async def count(self, filters: dict[str, Json]) -> int:
        """How many documents match, over every `type -> final filter`."""
        total = 0
        for resource_type, filter_ in filters.items():
            total += await self.database.resources(resource_type).count_documents(filter_, session=self.session)
        return total

    async def page(self, filters: dict[str, Json], fields: list[SortField], count: int, projection: Json,
                   anchor: Json | None = None, backwards: bool = False) -> Page:
        """Up to `count` hits after `anchor` (or, `backwards`, the `count` just before it)."""
        if count == 0:
            return Page([], False)
        spec = [(f.path, -1 if f.descending else 1) for f in fields]
        runs: list[list[tuple[tuple, Hit]]] = []
        available = 0
        for resource_type, filter_ in filters.items():
            query = filter_ if anchor is None else {"$and": [filter_, beyond(fields, anchor, resource_type,
                                                                            backwards)]}
            collection = self.database.resources(resource_type)
            cursor = collection.find(query, projection, session=self.session).sort(spec)
            if backwards:
                # The last `count` before the anchor in forward order: skip is exact here, it
                # is computed from the same anchor on the same data in this very request.
                before = await collection.count_documents(query, session=self.session)
                available += before
                cursor = cursor.skip(max(0, before - count)).limit(count)
            else:
                cursor = cursor.limit(count + 1)
            docs = await cursor.to_list(length=None)
            runs.append([(merge_key(d, resource_type, fields), (resource_type, d)) for d in docs])
        merged = [hit for _, hit in heapq.merge(*runs, key=lambda pair: pair[0])] if len(runs) > 1 else [
            hit for _, hit in runs[0]]
        if backwards:
            return Page(merged[-count:], available > count)
        return Page(merged[:count], len(merged) > count)


def boundary(hit: Hit, fields: list[SortField]) -> Json:
    """The keyset position of a hit, for a paging cursor."""
    resource_type, doc = hit
    return position(doc, resource_type, fields)
