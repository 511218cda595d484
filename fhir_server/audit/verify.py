"""Walking the audit chain: every link present, in order, and every event unaltered.

The walk follows `audit_chain` (one small document per sequence number: event id, hash,
recorded time) and loads the events in batches. It starts after the pruning anchor when old
events were removed under the retention policy, so expiry never breaks verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fhir_server.audit import chain
from fhir_server.audit.collections import CHAIN, RESOURCE_TYPE, STATE
from fhir_server.storage import Database

BATCH = 500


@dataclass(frozen=True)
class Verification:
    """The outcome of a walk: how many events were checked and the first problem, if any."""

    checked: int
    first: int | None
    last: int | None
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.problem is None


async def _start(database: Database, since: datetime | None) -> tuple[int, str]:
    """The sequence number the walk starts after, and the hash it must continue from."""
    chain_links, state = database.collection(CHAIN), database.collection(STATE)
    anchor = await state.find_one({"_id": "anchor"}) or {"seq": 0, "previous": chain.GENESIS}
    start, previous = anchor["seq"], anchor["previous"]
    if since is not None:
        first = await chain_links.find_one({"t": {"$gte": since}, "_id": {"$gt": start}}, sort=[("_id", 1)])
        if first is not None and first["_id"] - 1 > start:
            before = await chain_links.find_one({"_id": first["_id"] - 1})
            start, previous = first["_id"] - 1, before["h"] if before else previous
    return start, previous


async def verify_chain(database: Database, since: datetime | None = None,
                       until: datetime | None = None) -> Verification:
    """Check the chain (or the part recorded between `since` and `until`)."""
    start, previous = await _start(database, since)
    expected, checked, first = start + 1, 0, None
    events = database.resources(RESOURCE_TYPE)
    while True:
        query = {"_id": {"$gte": expected}} | ({"t": {"$lte": until}} if until else {})
        links = await database.collection(CHAIN).find(query).sort("_id", 1).limit(BATCH).to_list(None)
        if not links:
            break
        found = {d["_id"]: d.get("res") async for d in events.find({"_id": {"$in": [link["e"] for link in links]}},
                                                                 {"res": 1})}
        for link in links:
            if link["_id"] != expected:
                return Verification(checked, first, expected - 1, f"event #{expected} is missing from the chain")
            issue = chain.problem(found.get(link["e"]), expected, previous, link["h"])
            if issue:
                return Verification(checked, first, expected - 1, issue)
            first = first or expected
            previous, expected, checked = link["h"], expected + 1, checked + 1
    if until is None:
        head = await database.collection(STATE).find_one({"_id": "head"})
        if head and head["seq"] != expected - 1:
            return Verification(checked, first, expected - 1,
                                f"the chain ends at #{expected - 1} but {head['seq']} events were sealed")
        if since is None:
            total = await events.count_documents({})
            if total != checked:
                return Verification(checked, first, expected - 1,
                                    f"{total - checked} stored AuditEvents are not part of the chain")
    return Verification(checked, first, expected - 1 if checked else None, None)
