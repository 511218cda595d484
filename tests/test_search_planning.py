"""Query planning and fetching rules: fewer, index-friendly queries for the same answers.

Each date rule is checked two ways: against the brute-force range semantics of the spec
(evaluated in Python by `matcher.matches`, so no database is needed) and on the shape the runner
will send, which is what decides whether SecantusDB uses an index or scans. The rest check what
a page fetches (the first page's own total is checked over HTTP in test_search_http.py).
"""

from __future__ import annotations

import itertools

import pytest

from fhir_server.search.expand import Branch, branches
from fhir_server.search.includes import source_projection
from fhir_server.search.indexes import selective_fields
from fhir_server.search.matcher import matches
from fhir_server.search.plan import compile_query
from fhir_server.search.query import Include, parse_query
from fhir_server.search.runner import HIT_PROJECTION, _with_paths
from fhir_server.search.types import date as date_type

# Stored values of every precision, around year, month, day, minute and second boundaries.
STORED = ["1989", "1990", "1990-01", "1990-05", "1990-12", "1990-01-01", "1990-05-04", "1990-05-05",
          "1990-05-06", "1990-05-31", "1990-06-01", "1990-05-05T00:00Z", "1990-05-05T10:00+02:00",
          "1990-05-05T08:00:59Z", "1990-05-05T08:00:00.1Z", "1990-05-05T08:00:00.12Z",
          "1990-05-05T08:00:00.123Z", "1990-12-31T23:59:59Z", "1991", "9999", "9999-12", "0001"]
QUERIES = ["1990", "1990-01", "1990-05", "1990-01-01", "1990-05-05", "1990-05-31", "1990-05-05T08:00Z",
           "1990-05-05T10:00:00+02:00", "1990-05-05T08:00:00.1Z", "1990-05-05T08:00:00.120Z", "1990-12-31",
           "9999-12-31", "9999"]
PREFIXES = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]


def _spec(prefix: str, query: str, stored: str) -> bool:
    """R4's prefix definitions over the ranges the two values cover."""
    (qs, qe), (s, e) = date_type.parse_range(query), date_type.parse_range(stored)
    inside = qs <= s and e <= qe
    return {"eq": inside, "ne": not inside, "gt": e > qe, "lt": s < qs, "ge": e > qe or inside,
            "le": s < qs or inside, "sa": s > qe, "eb": e < qs}[prefix]


def _doc(stored: str) -> dict:
    s, e = date_type.parse_range(stored)
    return {"sp": {"birthdate": {"s": s, "e": e}}}


@pytest.mark.parametrize(("prefix", "query"), list(itertools.product(PREFIXES, QUERIES)))
def test_aligned_conditions_keep_the_spec_matches(prefix, query):
    value = date_type.parse(prefix + query, None)
    for aligned in (False, True):
        filter_ = date_type.match("sp.birthdate", True, None, [value], aligned=aligned)
        found = {stored for stored in STORED if matches(filter_, _doc(stored))}
        plain = date_type.match("sp.birthdate", True, None, [value])
        assert found == {stored for stored in STORED if matches(plain, _doc(stored))}
        if prefix != "ap":
            assert found == {stored for stored in STORED if _spec(prefix, query, stored)}
        # The branches the runner sends find the same, merged operators included.
        parts = branches({"$and": [filter_, {"sp.birthdate.s": {"$gte": date_type.LOW}}]})
        assert found == {stored for stored in STORED
                         if any(matches(b.filter, _doc(stored)) and b.accepts(_doc(stored)) for b in parts)}


def _branch_filters(resource_type: str, params: list[tuple[str, str]]) -> list[dict]:
    plan = compile_query(parse_query(resource_type, params))
    return [b.filter for b in branches(plan.filter)]


def test_a_date_range_on_a_date_only_parameter_is_one_index_range():
    start, end = date_type.parse_range("1990-01-01")[0], date_type.parse_range("1990-03-01")[0]
    assert _branch_filters("Patient", [("birthdate", "ge1990-01-01"), ("birthdate", "lt1990-03-01")]) == [
        {"del": {"$exists": False}, "sp.birthdate.s": {"$gte": start, "$lt": end}}]


def test_ge_within_a_year_adds_only_equalities_on_the_start():
    # A stored `1990` or `1990-05` ends after 1990-05-05 although it starts before it.
    (qs, qe) = date_type.parse_range("1990-05-05")
    year, month = date_type.parse_range("1990")[0], date_type.parse_range("1990-05")[0]
    assert _branch_filters("Patient", [("birthdate", "ge1990-05-05")]) == [
        {"del": {"$exists": False}, "sp.birthdate.s": {"$gte": qs}},
        {"del": {"$exists": False}, "sp.birthdate.s": year, "sp.birthdate.e": {"$gt": qe}},
        {"del": {"$exists": False}, "sp.birthdate.s": month, "sp.birthdate.e": {"$gt": qe}},
    ]


def test_le_is_one_range_when_no_period_starts_inside_and_reaches_past():
    qe = date_type.parse_range("1990-05-05")[1]
    assert _branch_filters("Patient", [("birthdate", "le1990-05-05")]) == [
        {"del": {"$exists": False}, "sp.birthdate.s": {"$lte": qe}}]


def test_periods_keep_the_general_conditions():
    # Observation.effective may be a Period or Timing: an open start is not a calendar period.
    qs, qe = date_type.parse_range("2018-01-01")
    assert _branch_filters("Observation", [("date", "ge2018-01-01")]) == [
        {"del": {"$exists": False}, "sp.date.e": {"$gt": qe}},
        {"del": {"$exists": False}, "sp.date.s": {"$gte": qs, "$lte": qe}, "sp.date.e": {"$lte": qe}},
    ]


def test_an_equality_merges_with_a_range_on_the_same_field():
    # The second keyset branch of a sorted page: one index lookup instead of an `$and` (a scan).
    parts = branches({"$and": [{"s": {"$gte": 5}}, {"$or": [{"s": {"$gt": 7}}, {"s": 7, "_id": {"$gt": "b"}}]}]})
    assert [p.filter for p in parts] == [{"s": {"$gte": 5, "$gt": 7}},
                                         {"s": {"$gte": 5, "$eq": 7}, "_id": {"$gt": "b"}}]


def test_pages_with_includes_fetch_only_the_references_followed():
    subject = Include("Observation", "subject", None, False)
    assert source_projection([subject], ["Observation"]) == {**HIT_PROJECTION, "sp.subject.r": 1}
    assert source_projection([subject], ["Patient"]) == HIT_PROJECTION
    everything = source_projection([Include("*", "*", None, True)], ["Observation"])
    assert {"sp.subject.r", "sp.performer.r", "sp.patient.r"} <= set(everything) and "sp" not in everything


def test_an_or_beside_a_selective_equality_is_checked_on_what_the_equality_finds():
    # A date prefix on a Period-capable parameter is an `$or`; the patient's observations are few.
    plan = compile_query(parse_query("Observation", [("patient", "Patient/1"), ("date", "ge2018-01-01")]))
    (only,) = branches(plan.filter, selective_fields("Observation"))
    assert only.filter == {"del": {"$exists": False}, "sp.patient.r": "Patient/1"}
    assert set(only.paths()) == {"sp.date.s", "sp.date.e"}
    qs, qe = date_type.parse_range("2018-01-01")
    assert only.accepts({"sp": {"date": {"s": qs, "e": qe}}})
    assert only.accepts({"sp": {"date": {"s": qs - 1, "e": qe + 1}}})
    assert not only.accepts({"sp": {"date": {"s": qs - 1, "e": qe}}})
    # Without such an equality, branches as before.
    assert len(branches(plan.filter)) == 2
    assert len(branches(compile_query(parse_query("Observation", [("date", "ge2018-01-01")])).filter,
                        selective_fields("Observation"))) == 2


def test_selective_fields_are_ids_compartments_and_indexed_references():
    assert {"_id", "sp.@compartment", "sp.patient.r", "sp.subject.r"} <= selective_fields("Observation")
    assert "sp.code.t" not in selective_fields("Observation")


def test_check_paths_join_the_projection_without_collisions():
    part = Branch({}, checks=[{"$or": [{"sp.date": {"$elemMatch": {"s": 1}}}, {"sp.date.e": 2}]}])
    assert _with_paths({"res": 1, "sp.date.s": 1}, part) == {"res": 1, "sp.date": 1}
    assert _with_paths({}, part) == {}
