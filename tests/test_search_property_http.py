"""Property: random Patients and random queries over HTTP give exactly what a brute-force
evaluator of the R4 search rules, written here in plain Python over all the resources, gives;
and paging through a sorted result visits the same order the evaluator sorts.

Each generated data set carries its own tag and every query filters on it, so the data sets of
different examples never mix.
"""

from __future__ import annotations

import unicodedata
from calendar import monthrange
from datetime import UTC, datetime

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fhir_data import fhir_headers, unique

FAMILIES = ["Ab", "abc", "Ábd", "Xyz", "xy"]
GENDERS = ["male", "female", "other", None]
SYSTEMS = ["urn:a", "urn:b", None]
VALUES = ["1", "2", "12"]
PREFIXES = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def _range(value: str) -> tuple[datetime, datetime]:
    """The closed range of instants a partial date covers (UTC, to the millisecond)."""
    parts = [int(p) for p in value.split("-")]
    year, month, day = parts[0], parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None
    start = datetime(year, month or 1, day or 1, tzinfo=UTC)
    last_month = month or 12
    last_day = day or monthrange(year, last_month)[1]
    return start, datetime(year, last_month, last_day, 23, 59, 59, 999000, tzinfo=UTC)


def _date_matches(target: str | None, prefix: str, value: str) -> bool:
    if target is None:
        return False
    (s, e), (qs, qe) = _range(target), _range(value)
    equal = qs <= s and e <= qe
    return {"eq": equal, "ne": not equal, "gt": e > qe, "lt": s < qs, "ge": e > qe or equal,
            "le": s < qs or equal, "sa": s > qe, "eb": e < qs}[prefix]


def _clause_matches(resource: dict, name: str, value: str) -> bool:
    """One parameter (comma-separated alternatives) against one resource, from the spec's rules."""
    family = resource.get("name", [{}])[0].get("family")
    identifiers = resource.get("identifier", [])
    for alternative in value.split(","):
        if name == "family" and family is not None and _fold(family).startswith(_fold(alternative)):
            return True
        if name == "family:exact" and family == alternative:
            return True
        if name == "family:contains" and family is not None and _fold(alternative) in _fold(family):
            return True
        if name == "gender" and resource.get("gender") == alternative:
            return True
        if name == "gender:missing" and (resource.get("gender") is None) == (alternative == "true"):
            return True
        if name == "birthdate" and _date_matches(resource.get("birthDate"), alternative[:2], alternative[2:]):
            return True
        if name == "identifier":
            system, bar, code = alternative.rpartition("|")
            for identifier in identifiers:
                if not bar and identifier["value"] == code:
                    return True
                if bar and (identifier.get("system") or "") == system and code in ("", identifier["value"]):
                    return True
    if name == "gender:not":  # :not is the complement of the whole parameter, missing included
        return resource.get("gender") not in value.split(",")
    return False


dates = st.builds(lambda y, m, d, precision: "-".join([f"{y}", f"{m:02d}", f"{d:02d}"][:precision]),
                  st.integers(1990, 1992), st.integers(1, 12), st.integers(1, 28), st.integers(1, 3))
patients = st.fixed_dictionaries({
    "family": st.sampled_from(FAMILIES), "gender": st.sampled_from(GENDERS), "birthDate": st.none() | dates,
    "identifier": st.lists(st.tuples(st.sampled_from(SYSTEMS), st.sampled_from(VALUES)), max_size=2),
})
clauses = st.one_of(
    st.tuples(st.sampled_from(["family", "family:exact", "family:contains"]),
              st.lists(st.sampled_from(["a", "ab", "Ab", "abd", "x", "xyz", "b"]), min_size=1, max_size=2)),
    st.tuples(st.sampled_from(["gender", "gender:not"]),
              st.lists(st.sampled_from(["male", "female", "other"]), min_size=1, max_size=2)),
    st.tuples(st.just("gender:missing"), st.sampled_from(["true", "false"]).map(lambda v: [v])),
    st.tuples(st.just("birthdate"), st.lists(st.builds(lambda p, d: p + d, st.sampled_from(PREFIXES), dates),
                                             min_size=1, max_size=2)),
    st.tuples(st.just("identifier"), st.lists(st.sampled_from(["urn:a|1", "urn:b|12", "1", "12", "urn:a|", "|2"]),
                                              min_size=1, max_size=2)),
)


def _resource(spec: dict, tag: str) -> dict:
    resource = {"resourceType": "Patient", "meta": {"tag": [{"system": "urn:prop", "code": tag}]},
                "name": [{"family": spec["family"]}]}
    if spec["gender"]:
        resource["gender"] = spec["gender"]
    if spec["birthDate"]:
        resource["birthDate"] = spec["birthDate"]
    if spec["identifier"]:
        resource["identifier"] = [{"value": v, **({"system": s} if s else {})} for s, v in spec["identifier"]]
    return resource


def _sort_key(resource: dict, descending: bool) -> tuple:
    """birthdate order as the spec asks: by the range start ascending, end descending; missing first
    (ascending) or last (descending); ties by id."""
    if resource.get("birthDate") is None:
        return (0 if not descending else 1, 0, resource["id"])
    start, end = _range(resource["birthDate"])
    stamp = end.timestamp() if descending else start.timestamp()
    return (1 if not descending else 0, -stamp if descending else stamp, resource["id"])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(patients, min_size=3, max_size=10), queries=st.lists(st.lists(clauses, min_size=1,
       max_size=2), min_size=1, max_size=4), descending=st.booleans(), count=st.integers(1, 4))
def test_random_queries_match_brute_force(client: httpx.Client, specs: list[dict], queries: list, descending: bool,
                                          count: int) -> None:
    tag = unique("prop")
    stored = []
    for spec in specs:
        response = client.post("/Patient", json=_resource(spec, tag), headers=fhir_headers())
        assert response.status_code == 201, response.text
        stored.append(response.json())
    for query in queries:
        params = [("_tag", f"urn:prop|{tag}"), *((name, ",".join(values)) for name, values in query)]
        expected = sorted(r["id"] for r in stored
                          if all(_clause_matches(r, name, ",".join(values)) for name, values in query))
        response = client.get("/Patient", params=[*params, ("_count", "100")])
        assert response.status_code == 200, response.text
        assert sorted(e["resource"]["id"] for e in response.json().get("entry", [])) == expected, params
    order = [r["id"] for r in sorted(stored, key=lambda r: _sort_key(r, descending))]
    url = f"/Patient?_tag=urn:prop|{tag}&_sort={'-' if descending else ''}birthdate&_count={count}"
    seen: list[str] = []
    while url:
        bundle = client.get(url).json()
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert seen == order
