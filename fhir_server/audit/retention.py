"""Audit retention: removing events older than the retention period without breaking the chain.

Pruning removes a prefix of the chain (events are sealed in roughly, not strictly, recorded-time
order, so it stops at the first event recorded after the cut-off) and records where it stopped
(`audit_state` anchor: last removed sequence number and its hash); verification starts there.
"""

from __future__ import annotations

from datetime import datetime
from itertools import takewhile

from fhir_server.audit.collections import CHAIN, RESOURCE_TYPE, STATE
from fhir_server.storage import Database, Session

BATCH = 1000


async def prune(database: Database, before: datetime) -> int:
    """Remove the AuditEvents recorded before `before`; returns how many were removed."""
    removed = 0
    links, state = database.collection(CHAIN), database.collection(STATE)
    while True:
        batch = await links.find({}).sort("_id", 1).limit(BATCH).to_list(None)
        prefix = list(takewhile(lambda link: link["t"] < before, batch))
        if not prefix:
            return removed

        async def remove(session: Session, prefix: list = prefix) -> None:
            last = prefix[-1]
            await database.resources(RESOURCE_TYPE).delete_many(
                {"_id": {"$in": [link["e"] for link in prefix]}}, session=session)
            await links.delete_many({"_id": {"$lte": last["_id"]}}, session=session)
            await state.update_one({"_id": "anchor"}, {"$set": {"seq": last["_id"], "previous": last["h"]}},
                                   upsert=True, session=session)

        await database.transaction(remove)
        removed += len(prefix)
        if len(prefix) < len(batch):
            return removed
