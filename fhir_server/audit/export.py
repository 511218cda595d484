"""Audit export for regulators: the chained AuditEvents of a period as NDJSON or CSV rows."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson

from fhir_server.audit.collections import CHAIN, RESOURCE_TYPE
from fhir_server.storage import Database

Json = dict[str, Any]
BATCH = 500
CSV_COLUMNS = ("sequence", "recorded", "type", "subtype", "action", "outcome", "outcomeDesc", "who",
               "client", "address", "patient", "entities", "request_id", "id")


async def events_between(database: Database, since: datetime | None, until: datetime | None
                         ) -> AsyncIterator[tuple[int, Json]]:
    """(sequence, AuditEvent) for events recorded in [since, until], in chain order."""
    query: Json = {}
    if since or until:
        query["t"] = {k: v for k, v in (("$gte", since), ("$lte", until)) if v is not None}
    after = 0
    while True:
        links = await database.collection(CHAIN).find({**query, "_id": {"$gt": after}}).sort(
            "_id", 1).limit(BATCH).to_list(None)
        if not links:
            return
        found = {d["_id"]: d["res"] async for d in database.resources(RESOURCE_TYPE).find(
            {"_id": {"$in": [link["e"] for link in links]}}, {"res": 1})}
        for link in links:
            if link["e"] in found:
                yield link["_id"], found[link["e"]]
        after = links[-1]["_id"]


def ndjson_line(event: Json) -> bytes:
    return orjson.dumps(event) + b"\n"


def _agent(event: Json, code: str) -> Json:
    return next((a for a in event.get("agent", []) if any(c.get("code") == code for c in
                                                          a.get("type", {}).get("coding", []))), {})


def csv_row(sequence: int, event: Json) -> list[str]:
    """One flat row per event, for spreadsheets (CSV_COLUMNS)."""
    user, client = _agent(event, "UserOauthAgent"), _agent(event, "110153")
    entities = event.get("entity", [])
    patient = next((e["what"]["reference"] for e in entities if e.get("role", {}).get("code") == "1"), "")
    who = user.get("who", {})
    return [str(sequence), event.get("recorded", ""), event.get("type", {}).get("code", ""),
            ",".join(s.get("code", "") for s in event.get("subtype", [])), event.get("action", ""),
            event.get("outcome", ""), event.get("outcomeDesc", ""),
            who.get("reference") or who.get("identifier", {}).get("value", ""),
            client.get("who", {}).get("identifier", {}).get("value", ""),
            client.get("network", {}).get("address", ""), patient,
            " ".join(e["what"]["reference"] for e in entities if "reference" in e.get("what", {})),
            next((e["what"]["identifier"]["value"] for e in entities if "identifier" in e.get("what", {})), ""),
            event.get("id", "")]


def csv_text(row: list[str] | tuple[str, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    return buffer.getvalue()
