"""Search benchmark: load Patients and Observations over HTTP, then time typical searches over
HTTP against the equivalent hand-written MongoDB queries on the same stored documents.

    python -m bench.search [--scale 0.02] [--repeat 50] [--concurrency 4] [--url URL --mongodb-uri URI]

At scale 1 it loads 100,000 Patients and 500,000 Observations (generated: names, identifiers,
birth dates, addresses; vital-sign Observations with LOINC codes, UCUM quantities and dates),
timing the load in resources/s. Each query then runs `--repeat` times with different values;
the driver baseline runs the query an engineer would write by hand against the same
collections (the `sp` index fields), fetching the same page, the same total and, for
`_include`, the same referenced resources. Printed: p50/p95 per query and the ratio of mean
latencies HTTP/driver (target <= 1.3x).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import AsyncMongoClient

from bench.harness import Timing, live_server, timed
from bench.http_client import RawHttpClient

PATIENTS, OBSERVATIONS = 100_000, 500_000
LOINC, UCUM, MRN = "http://loinc.org", "http://unitsofmeasure.org", "urn:oid:1.2.36.146.595.217.0.1"
VITALS = [("8867-4", "Heart rate", "/min", 50, 110), ("9279-1", "Respiratory rate", "/min", 10, 30),
          ("8310-5", "Body temperature", "Cel", 35, 40), ("29463-7", "Body weight", "kg", 3, 150),
          ("8302-2", "Body height", "cm", 45, 200), ("2708-6", "Oxygen saturation", "%", 85, 100)]
SYLLABLES = ["an", "ber", "cal", "den", "el", "fo", "gar", "hal", "in", "jo", "ka", "lin", "mor", "nel",
             "or", "pet", "quin", "ros", "sal", "tor", "ul", "van", "wil", "xa", "yor", "zel"]
GIVEN = ["Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana", "Ivo", "June", "Kai", "Lea"]
HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
COUNT = 20


def family(i: int) -> str:
    """About 17,500 distinct surnames, a few hundred patients each at most."""
    return (SYLLABLES[i % 26] + SYLLABLES[(i // 26) % 26] + SYLLABLES[(i // 676) % 26]).capitalize()


def make_patient(i: int, rng: random.Random) -> dict:
    born = datetime(1930, 1, 1, tzinfo=UTC).timestamp() + rng.random() * 90 * 365.25 * 86400
    return {
        "resourceType": "Patient", "active": True,
        "identifier": [{"use": "usual", "system": MRN, "value": f"MRN{i:08d}",
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                             "code": "MR"}]}}],
        "name": [{"use": "official", "family": family(rng.randrange(PATIENTS)),
                  "given": [rng.choice(GIVEN), rng.choice(GIVEN)]}],
        "telecom": [{"system": "phone", "value": f"+61 3 5555 {i % 10000:04d}", "use": "home"}],
        "gender": rng.choice(["male", "female"]),
        "birthDate": datetime.fromtimestamp(born, UTC).strftime("%Y-%m-%d"),
        "address": [{"use": "home", "line": [f"{i % 997} Main Street"], "city": rng.choice(["Melbourne", "Geelong"]),
                     "postalCode": f"{3000 + i % 900}", "country": "AU"}],
    }


def make_observation(patient_id: str, rng: random.Random) -> dict:
    code, display, unit, low, high = rng.choice(VITALS)
    when = datetime(2015, 1, 1, tzinfo=UTC).timestamp() + rng.random() * 9 * 365.25 * 86400
    return {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valueQuantity": {"value": round(low + rng.random() * (high - low), 1), "unit": unit, "system": UCUM,
                          "code": unit},
    }


async def load(url: str, patients: int, observations: int, concurrency: int, auth: dict[str, str] | None = None
               ) -> tuple[Timing, list[str]]:
    rng = random.Random(42)
    client = RawHttpClient(url, concurrency, auth)
    ids = [""] * patients

    async def create_patient(i: int) -> None:
        reply = (await client.request("POST", "/Patient", json.dumps(make_patient(i, rng)).encode(), HEADERS)).check()
        ids[i] = reply.headers["location"].split("/")[-3]

    async def create_observation(i: int) -> None:
        body = json.dumps(make_observation(ids[i % patients], rng)).encode()
        (await client.request("POST", "/Observation", body, HEADERS)).check()

    try:
        started = time.perf_counter()
        first = await timed("load Patients", patients, concurrency, create_patient)
        second = await timed("load Observations", observations, concurrency, create_observation)
        elapsed = time.perf_counter() - started
        return Timing("load (all resources)", patients + observations, elapsed,
                      first.latencies + second.latencies), ids
    finally:
        await client.close()


@dataclass(frozen=True)
class Case:
    label: str
    http: Callable[[int], str]
    """The search URL (path and query) for repetition i."""
    driver: Callable[[object, int], Awaitable[None]]
    """The hand-written equivalent for repetition i, given the database."""


def _day_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


async def _page(collection, filter_: dict, sort: list, with_total: bool = True) -> list[dict]:
    projection = {"vid": 1, "ts": 1, "res": 1, "sp.@compartment": 1, **{k: 1 for k, _ in sort if k != "_id"}}
    docs = await collection.find({**filter_, "del": {"$exists": False}}, projection
                                 ).sort(sort).limit(COUNT + 1).to_list(length=None)
    # A page with room to spare is every match: its length is the total, as the server answers it.
    if with_total and len(docs) > COUNT:
        await collection.count_documents({**filter_, "del": {"$exists": False}})
    return docs


def cases(ids: list[str], rng: random.Random) -> list[Case]:
    patients = len(ids)
    families = [family(rng.randrange(PATIENTS)) for _ in range(1000)]
    years = [1935 + rng.randrange(80) for _ in range(1000)]
    picks = [rng.randrange(patients) for _ in range(1000)]
    codes = [rng.choice(VITALS)[0] for _ in range(1000)]
    by_id = [("_id", 1)]

    async def family_driver(db, i: int) -> None:
        name = families[i].lower()
        await _page(db.Patient, {"sp.family.v": {"$gte": name, "$lt": name[:-1] + chr(ord(name[-1]) + 1)}}, by_id)

    async def birthdate_driver(db, i: int) -> None:
        lo, hi = _day_ms(f"{years[i]}-01-01"), _day_ms(f"{years[i]}-03-01")
        await _page(db.Patient, {"sp.birthdate.s": {"$gte": lo, "$lt": hi}}, by_id)

    async def identifier_driver(db, i: int) -> None:
        await _page(db.Patient, {"sp.identifier.t": f"{MRN}|MRN{picks[i]:08d}"}, by_id)

    def observation_filter(i: int) -> dict:
        return {"sp.patient.r": f"Patient/{ids[picks[i]]}", "sp.code.t": f"{LOINC}|{codes[i]}",
                "sp.date.s": {"$gte": _day_ms("2018-01-01")}}

    async def observation_driver(db, i: int) -> None:
        await _page(db.Observation, observation_filter(i), by_id)

    async def include_driver(db, i: int) -> None:
        docs = await _page(db.Observation, observation_filter(i), by_id)
        if docs:
            await db.Patient.find({"_id": {"$in": [ids[picks[i]]]}, "del": {"$exists": False}}).to_list(length=None)

    async def sorted_driver(db, i: int) -> None:
        lo = _day_ms(f"{years[i]}-01-01")
        sort = [("sp.birthdate.s", 1), ("_id", 1)]
        first = await _page(db.Patient, {"sp.birthdate.s": {"$gte": lo}}, sort, with_total=False)
        last = first[COUNT - 1]
        born = last["sp"]["birthdate"]["s"]
        after = {"$or": [{"sp.birthdate.s": {"$gt": born}}, {"sp.birthdate.s": born, "_id": {"$gt": last["_id"]}}]}
        await _page(db.Patient, {"$and": [{"sp.birthdate.s": {"$gte": lo}}, after]}, sort, with_total=False)

    observation_query = ("/Observation?patient=Patient/{p}&code=" + LOINC + "|{c}&date=ge2018-01-01")
    return [
        Case("family name", lambda i: f"/Patient?family={families[i]}", family_driver),
        Case("birthdate range", lambda i: f"/Patient?birthdate=ge{years[i]}-01-01&birthdate=lt{years[i]}-03-01",
             birthdate_driver),
        Case("identifier token", lambda i: f"/Patient?identifier={MRN}|MRN{picks[i]:08d}", identifier_driver),
        Case("obs patient+code+date", lambda i: observation_query.format(p=ids[picks[i]], c=codes[i]),
             observation_driver),
        Case("obs ... &_include=subject",
             lambda i: observation_query.format(p=ids[picks[i]], c=codes[i]) + "&_include=Observation:subject",
             include_driver),
        Case("_sort=birthdate, 2 pages", lambda i: f"/Patient?birthdate=ge{years[i]}&_sort=birthdate&_total=none"
             f"&_count={COUNT}", sorted_driver),
    ]


async def measure(server_url: str, mongodb_uri: str, database: str, case: Case, repeat: int,
                  concurrency: int, auth: dict[str, str] | None = None) -> tuple[Timing, Timing]:
    client = RawHttpClient(server_url, concurrency, auth)
    mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri, maxPoolSize=concurrency * 2, tz_aware=True)
    db = mongo[database]

    async def over_http(i: int) -> None:
        reply = (await client.request("GET", case.http(i).replace("|", "%7C"), headers=HEADERS)).check()
        if case.label.startswith("_sort"):
            bundle = json.loads(reply.body)
            following = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
            path = following[following.index("/Patient"):]
            (await client.request("GET", path, headers=HEADERS)).check()

    async def by_driver(i: int) -> None:
        await case.driver(db, i)

    try:
        await timed("warm-up", min(repeat, 5), 1, over_http)
        http = await timed(f"HTTP {case.label}", repeat, concurrency, over_http)
        driver = await timed(f"driver {case.label}", repeat, concurrency, by_driver)
        return http, driver
    finally:
        await client.close()
        await mongo.close()


def _mean(timing: Timing) -> float:
    return sum(timing.latencies) / len(timing.latencies)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 100k Patients / 500k Observations")
    parser.add_argument("--repeat", type=int, default=50, help="runs of each query (default 50)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--load-concurrency", type=int, default=16)
    parser.add_argument("--url", help="a running server (default: start fhir-server serve)")
    parser.add_argument("--mongodb-uri", help="its database, for the driver baseline")
    parser.add_argument("--database", default="fhir")
    args = parser.parse_args()
    patients, observations = max(50, int(PATIENTS * args.scale)), max(250, int(OBSERVATIONS * args.scale))
    with live_server(args.url, args.mongodb_uri, args.database, env={"FHIR_AUDIT": "off"}) as server:
        loaded, ids = await load(server.url, patients, observations, args.load_concurrency, server.auth)
        print(f"loaded {patients} Patients + {observations} Observations: {loaded.per_second:.0f} resources/s "
              f"({loaded.seconds:.1f} s)")
        print(f"{'query':<30} {'HTTP p50':>9} {'p95':>8} {'driver p50':>11} {'p95':>8} {'ratio':>6}")
        for case in cases(ids, random.Random(7)):
            http, driver = await measure(server.url, server.mongodb_uri, server.database, case, args.repeat,
                                         args.concurrency, server.auth)
            ratio = _mean(http) / _mean(driver)
            print(f"{case.label:<30} {http.percentile(50):8.2f}ms {http.percentile(95):7.2f}ms "
                  f"{driver.percentile(50):10.2f}ms {driver.percentile(95):7.2f}ms {ratio:5.2f}x")
    print("ratio: mean HTTP latency / mean driver latency of the hand-written query (target <= 1.3x)")


if __name__ == "__main__":
    asyncio.run(main())
