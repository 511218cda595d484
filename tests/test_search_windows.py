"""Sorted pages read through windows of the first sort key (`search/windows.py`), over HTTP and
against the real database: every page in the exact keyset order across window edges, ties on an
edge, missing values, multi-valued keys and a descending key, and the page queries bounded."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient, monitoring

from fhir_server.search.matcher import matches
from fhir_server.search.plan import compile_query, sort_fields
from fhir_server.search.query import parse_query
from fhir_server.search.runner import Hit, Runner, boundary
from fhir_server.storage.codecs import TYPE_REGISTRY
from fhir_server.storage.database import Database
from tests.fhir_data import fhir_headers, patient, unique
from tests.find_filters import FindFilters

# Ties at the start of the range and exactly on the first window's end (a day later), a month
# and years apart (the windows grow over the gaps), then one far out; one before the range.
BIRTH_DATES = ["1990-01-01", "1990-01-01", "1990-01-02", "1990-01-02", "1990-01-03", "1990-02-15",
               "1991-06-01", "1995-01-01", "1995-01-01", "2005-01-01", "2190-07-04", "1989-12-31"]


def _create(client: httpx.Client, resource: dict) -> dict:
    response = client.post(f"/{resource['resourceType']}", json=resource, headers=fhir_headers())
    assert response.status_code == 201, response.text
    return response.json()


def _tagged(tag: str, birth_date: str | None) -> dict:
    resource = patient(meta={"tag": [{"system": "urn:windows", "code": tag}]})
    if birth_date is None:
        del resource["birthDate"]
    else:
        resource["birthDate"] = birth_date
    return resource


def _link(bundle: dict, relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def _paged(client: httpx.Client, url: str) -> list[str]:
    seen: list[str] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.text
        bundle = response.json()
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = _link(bundle, "next")
    return seen


def test_pages_across_windows_keep_the_keyset_order(client: httpx.Client) -> None:
    tag = unique("win")
    stored = [_create(client, _tagged(tag, born)) for born in [*BIRTH_DATES, None, None]]
    in_range = sorted((r["birthDate"], r["id"]) for r in stored if r.get("birthDate", "") >= "1990-01-01")
    for count in (1, 2, 3, 20):
        url = f"/Patient?_tag=urn:windows|{tag}&birthdate=ge1990-01-01&_sort=birthdate&_count={count}"
        assert _paged(client, url) == [i for _, i in in_range], count
    ids_down = sorted(in_range, key=lambda pair: pair[1], reverse=True)
    by_date_then_id_down = [i for _, i in sorted(ids_down, key=lambda pair: pair[0])]
    url = f"/Patient?_tag=urn:windows|{tag}&birthdate=ge1990-01-01&_sort=birthdate,-_id&_count=2"
    assert _paged(client, url) == by_date_then_id_down
    missing_first = sorted((r.get("birthDate", ""), r["id"]) for r in stored)
    assert _paged(client, f"/Patient?_tag=urn:windows|{tag}&_sort=birthdate&_count=2") == [i for _, i in missing_first]
    bounded = [i for born, i in in_range if born < "1995-01-01"]
    url = f"/Patient?_tag=urn:windows|{tag}&birthdate=ge1990-01-01&birthdate=lt1995-01-01&_sort=birthdate&_count=2"
    assert _paged(client, url) == bounded
    first = client.get(f"/Patient?_tag=urn:windows|{tag}&birthdate=ge1990-01-01&_sort=birthdate&_count=4").json()
    assert first["total"] == len(in_range)
    second = client.get(_link(first, "next")).json()
    assert [e["resource"]["id"] for e in second["entry"]] == [i for _, i in in_range][4:8]
    back = client.get(_link(second, "previous")).json()
    assert [e["resource"]["id"] for e in back["entry"]] == [i for _, i in in_range][:4]


def _walk_back(client: httpx.Client, url: str) -> list[str]:
    """Every id from the last page at `url`'s search back to the first, through `previous` links."""
    while (following := _link(client.get(url).json(), "next")) is not None:
        url = following
    seen: list[str] = []
    while url:
        bundle = client.get(url).json()
        seen = [e["resource"]["id"] for e in bundle.get("entry", [])] + seen
        url = _link(bundle, "previous")
    return seen


def test_previous_pages_walk_back_across_windows(client: httpx.Client) -> None:
    tag = unique("win")
    stored = [_create(client, _tagged(tag, born)) for born in [*BIRTH_DATES, None, None]]
    order = [i for _, i in sorted((r.get("birthDate", ""), r["id"]) for r in stored)]
    for sort, expected in (("birthdate", order), ("-_id", sorted(order, reverse=True))):
        for count in (1, 3):
            assert _walk_back(client, f"/Patient?_tag=urn:windows|{tag}&_sort={sort}&_count={count}") == expected


def _period_end(birth_date: str) -> date:
    """The day after the calendar period a birth date names: ordered as the period's ends are."""
    parts = [int(p) for p in birth_date.split("-")]
    if len(parts) == 1:
        return date(parts[0] + 1, 1, 1)
    if len(parts) == 2:
        return date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
    return date(*parts) + timedelta(days=1)


# Years and months end after days they start before: the order by end is not the order by start.
MIXED_PRECISION = ["1990", "1990-12-31", "1990-06", "1990-06-30", "1990-07-01", "1991", "1991-01-01", "1989-12",
                   "1989", "1989-12-31", "2001", "1950", "1950-12-31"]


def test_descending_dates_page_by_range_end_through_the_starts(client: httpx.Client) -> None:
    tag = unique("win")
    stored = [_create(client, _tagged(tag, born)) for born in [*MIXED_PRECISION, None]]
    latest_first = sorted(sorted(stored, key=lambda r: r["id"]),
                          key=lambda r: _period_end(r["birthDate"]) if "birthDate" in r else date.min, reverse=True)
    # Stable sorts: by id within an end, missing last (they sort lowest).
    expected = [r["id"] for r in latest_first]
    for count in (1, 2, 5):
        assert _paged(client, f"/Patient?_tag=urn:windows|{tag}&_sort=-birthdate&_count={count}") == expected
    assert _walk_back(client, f"/Patient?_tag=urn:windows|{tag}&_sort=-birthdate&_count=2") == expected
    bounded = [r["id"] for r in latest_first if "birthDate" in r and r["birthDate"] < "1991"]
    url = f"/Patient?_tag=urn:windows|{tag}&birthdate=lt1991-01-01&_sort=-birthdate&_count=2"
    assert _paged(client, url) == bounded


def test_multivalued_key_pages_by_lowest_value_across_windows(client: httpx.Client) -> None:
    # MedicationRequest.date is every dosage timing event: a request sorts by its earliest one, and
    # one whose later events fall in a window after its own position must not show up there again.
    tag = unique("win")
    subject = _create(client, patient())["id"]
    events = [["2020-01-05", "2020-01-01"], ["2020-01-03"], ["2020-01-04", "2019-12-31"], ["2020-01-02", "2021-03-01"],
              ["2020-01-02"], ["2020-06-01", "2020-01-03", "2023-01-01"], ["2022-01-01"], ["2020-01-01"]]
    stored = [_create(client, {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "meta": {"tag": [{"system": "urn:windows", "code": tag}]},
        "medicationCodeableConcept": {"text": "aspirin"}, "subject": {"reference": f"Patient/{subject}"},
        "dosageInstruction": [{"timing": {"event": dates}}]}) for dates in events]
    expected = [r["id"] for r in sorted(stored, key=lambda r: (min(r["dosageInstruction"][0]["timing"]["event"]),
                                                                r["id"]))]
    for count in (1, 2, 3):
        assert _paged(client, f"/MedicationRequest?_tag=urn:windows|{tag}&_sort=date&_count={count}") == expected
    assert _walk_back(client, f"/MedicationRequest?_tag=urn:windows|{tag}&_sort=date&_count=3") == expected


def test_descending_instants_page_across_windows(client: httpx.Client) -> None:
    tag = unique("win")
    stored = []
    for batch in range(3):  # seconds apart: the windows of `_lastUpdated` start a second wide
        stored += [_create(client, _tagged(tag, "1970-01-01")) for _ in range(3)]
        if batch < 2:
            time.sleep(1.1)
    by_time: dict[str, list[str]] = {}
    for r in stored:
        by_time.setdefault(r["meta"]["lastUpdated"], []).append(r["id"])
    expected = [i for stamp in sorted(by_time, reverse=True) for i in sorted(by_time[stamp])]
    for count in (1, 2, 4):
        assert _paged(client, f"/Patient?_tag=urn:windows|{tag}&_sort=-_lastUpdated&_count={count}") == expected
    # Down to the branch's own end: the windows stop at `gt` the first batch's last write.
    since = stored[2]["meta"]["lastUpdated"]
    later = [i for i in expected if i not in {r["id"] for r in stored[:3]}]
    url = f"/Patient?_tag=urn:windows|{tag}&_lastUpdated=gt{since}&_sort=-_lastUpdated&_count=2"
    assert _paged(client, url) == later


class _Monitored(Database):
    """The server's database, through a client that reports the commands it sends."""

    def __init__(self, uri: str, name: str, listener: monitoring.CommandListener) -> None:
        self.client = AsyncMongoClient(uri, tz_aware=True, type_registry=TYPE_REGISTRY, event_listeners=[listener])
        self.db = self.client[name]


async def _three_pages(uri: str, name: str, params: list[tuple[str, str]]) -> tuple[list[list[str]], list[list[dict]]]:
    """The ids of a first page of 5, the next and the previous one again, and the filters each sent."""
    query = parse_query("Patient", params)
    fields = sort_fields(query.result.sort)
    finds = FindFilters()
    database = _Monitored(uri, name, finds)
    runner = Runner(database, None)
    filters = {"Patient": await runner.filter(compile_query(query))}
    seen: list[list[str]] = []
    sent: list[list[dict]] = []

    async def page(anchor: dict | None = None, backwards: bool = False) -> list[Hit]:
        finds.filters.clear()
        hits = (await runner.page(filters, fields, 5, {"sp.birthdate": 1}, anchor, backwards)).hits
        seen.append([doc["_id"] for _, doc in hits])
        sent.append(list(finds.filters))
        return hits

    first = await page()
    second = await page(boundary(first[-1], fields))
    await page(boundary(second[0], fields), backwards=True)
    await database.close()
    return seen, sent


def _covered(filter_: dict, starts: list[int]) -> int:
    """How many of the birth date `starts` a query's range of the starts' index covers (all of them
    when it has none: then nothing narrows what it reads)."""
    if "sp.birthdate.s" not in filter_:
        return len(starts)
    condition = filter_["sp.birthdate.s"] or {"$eq": None}  # null: those without a birth date
    return sum(matches({"s": condition}, {"s": start}) for start in starts)


@pytest.mark.parametrize("descending", [False, True])
def test_sorted_pages_read_bounded_ranges_of_the_key(client: httpx.Client, server, mongodb_uri: str,
                                                     descending: bool) -> None:
    # One patient a year, 1950-1989. Ascending from 1960: the first page needs 1960-1965 (the
    # sixth tells that more follow), the next one 1965-1970. Descending (by the end of the birth
    # date, read through the index of starts) with no range: the first page reads everything,
    # the next one needs 1984-1979 and the previous one 1989-1984.
    tag = unique("win")
    ids = [_create(client, _tagged(tag, f"{1950 + n}-06-01"))["id"] for n in range(40)]
    order = "-birthdate" if descending else "birthdate"
    params = [("_tag", f"urn:windows|{tag}"), ("_sort", order), *([] if descending else [("birthdate", "ge1960")])]
    seen, sent = asyncio.run(_three_pages(mongodb_uri, server.settings.database_name, params))
    expected = ids[::-1][:10] if descending else ids[10:20]
    assert seen == [expected[:5], expected[5:], expected[:5]]
    # No query these pages send reads more than 15 of the 40 entries of the starts' index (the old
    # single query read 30 or 40; those past the last birth date, galloping to the end, read none).
    starts = [int(datetime(1950 + n, 6, 1, tzinfo=UTC).timestamp() * 1000) for n in range(40)]
    for filters in sent[1 if descending else 0:]:
        assert filters and max(_covered(f, starts) for f in filters) <= 15, filters
