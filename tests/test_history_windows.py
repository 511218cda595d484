"""Type and system history read through windows of time (`storage/windows.py`): against the real
database, every page equals the one plain query's, whatever the gaps and ties between versions,
and each query is one the embedded database serves from an index range; over HTTP, paging a
type's and the system's history in both directions visits every version once, in order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient

from fhir_server.fhir.primitives import now
from fhir_server.storage.windows import history_page
from tests.conftest import LiveServer
from tests.fhir_data import fhir_headers, patient, unique
from tests.find_filters import FindFilters


def _timestamps(moment: datetime) -> list[datetime]:
    """Versions at ties, milliseconds, minutes, months and years apart, all in the past."""
    rng = random.Random(3)
    stamps = []
    for gap in (timedelta(milliseconds=1), timedelta(seconds=1), timedelta(minutes=7), timedelta(days=40),
                timedelta(days=800)):
        start = moment - gap * 12 - timedelta(seconds=5)
        stamps += [start + gap * rng.randrange(12) for _ in range(12)]
    return [s.replace(microsecond=s.microsecond // 1000 * 1000) for s in stamps]


def _entries(moment: datetime) -> list[dict]:
    return [{"_id": f"{t}/{n}/1", "t": t, "i": str(n), "v": 1, "ts": ts, "m": "POST"}
            for n, ts in enumerate(_timestamps(moment)) for t in ("Patient", "Observation")[n % 2:n % 2 + 1]]


def _order(entry: dict) -> tuple[datetime, str]:
    return entry["ts"], entry["_id"]


async def _compare(mongodb_uri: str) -> list[dict]:
    name = unique("history_windows")
    finds = FindFilters(name)
    client: AsyncMongoClient = AsyncMongoClient(mongodb_uri, tz_aware=True, event_listeners=[finds])
    collection = client.fhir_windows_test[name]
    try:
        entries = _entries(now())
        await collection.insert_many(entries)
        await collection.create_index([("t", 1), ("ts", -1), ("_id", -1)])
        rng = random.Random(11)
        for _ in range(60):
            fixed = rng.choice([{}, {"t": "Patient"}])
            descending = rng.random() < 0.6
            limit = rng.choice([1, 2, 3, 5, 9, 40])
            since = rng.choice([None, rng.choice(entries)["ts"]])
            wanted = sorted((e for e in entries if all(e[k] == v for k, v in fixed.items())
                             and (since is None or e["ts"] >= since)), key=_order, reverse=descending)
            anchor_entry = rng.choice([None, *wanted])
            anchor = (anchor_entry["ts"], anchor_entry["_id"]) if anchor_entry else None
            if anchor is None and not descending:
                continue  # forward pages start from a version already shown
            if anchor_entry:
                wanted = wanted[wanted.index(anchor_entry) + 1:]
            page = await history_page(collection, fixed, limit, descending=descending, anchor=anchor, since=since)
            assert [e["_id"] for e in page] == [e["_id"] for e in wanted[:limit]], (fixed, descending, limit, since,
                                                                                    anchor)
        return finds.filters
    finally:
        await client.drop_database("fhir_windows_test")
        await client.close()


def test_windowed_pages_equal_the_single_query(mongodb_uri: str) -> None:
    filters = asyncio.run(_compare(mongodb_uri))
    # Flat filters on `t` and `ts` (and `_id` for the ties of an anchor): anything more ($and,
    # $or, $not) makes the embedded database read every entry of the range before the limit.
    assert filters and all(set(f) <= {"t", "ts", "_id"} and "ts" in f for f in filters)
    # The newest page of 40 entries read in one query spanning all of them would cover 11 years;
    # the windows start one second wide.
    assert any(isinstance(f["ts"], dict) and set(f["ts"]) == {"$gt"} for f in filters)
    # Only exclusive bounds: SecantusDB 0.7 loses the entries on an inclusive one (see the module).
    assert not any(isinstance(f["ts"], dict) and {"$gte", "$lte"} & set(f["ts"]) for f in filters)


@pytest.fixture(scope="module")
def fresh(make_server) -> LiveServer:
    """A server of its own: its system history holds only what the test writes."""
    return make_server()


@pytest.fixture
def fresh_client(fresh: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fresh.url, headers={"Accept": "application/fhir+json"}, auth=fresh.auth,
                      timeout=60) as http:
        yield http


def _pages(client: httpx.Client, url: str | None, relation: str) -> list[list[str]]:
    """The pages from `url` on, following `relation`: each the `Type/id/version` of its entries."""
    pages = []
    while url:
        bundle = client.get(url).json()
        pages.append([e["fullUrl"].split("/", 3)[-1] + "/" + e["response"]["etag"][3:-1]
                      for e in bundle.get("entry", [])])
        url = next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)
    return pages


def test_type_and_system_history_page_through_every_version(fresh_client: httpx.Client, fresh: LiveServer,
                                                             mongo) -> None:
    client = fresh_client
    for n in range(7):
        created = client.post("/Patient", json=patient(), headers=fhir_headers()).json()
        client.post("/Observation", json={"resourceType": "Observation", "status": "final",
                                          "code": {"text": unique("obs")}}, headers=fhir_headers())
        if n % 2:
            client.put(f"/Patient/{created['id']}", json={**created, "gender": "other"}, headers=fhir_headers())
        if n % 3 == 0:
            client.delete(f"/Patient/{created['id']}")
    history = mongo[fresh.settings.database_name].history
    for url, query in (("/Patient/_history", {"t": "Patient"}), ("/_history", {})):
        stored = [f"{d['t']}/{d['i']}/{d['v']}" for d in history.find(query).sort([("ts", -1), ("_id", -1)])]
        pages = _pages(client, f"{url}?_count=2", "next")
        assert [entry for page in pages for entry in page] == stored, url
        last = client.get(f"{url}?_count=2").json()
        while (following := next((link["url"] for link in last["link"] if link["relation"] == "next"), None)):
            last = client.get(following).json()
        previous = next(link["url"] for link in last["link"] if link["relation"] == "previous")
        assert _pages(client, previous, "previous") == pages[-2::-1], url
        since = history.find_one(query, sort=[("ts", -1)], skip=5)["ts"]
        recent = [s for s, d in zip(stored, history.find(query).sort([("ts", -1), ("_id", -1)]), strict=True)
                  if d["ts"] >= since]
        stamp = since.strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond // 1000:03d}Z"
        pages = _pages(client, f"{url}?_count=3&_since={stamp}", "next")
        assert [entry for page in pages for entry in page] == recent, url
