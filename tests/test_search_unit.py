"""Search engine pieces without a database: registry, expression compiler, extraction, parsing."""

from __future__ import annotations

import gzip
from pathlib import Path

import fhirpathpy
import orjson
import pytest
from fhirpathpy.models import models as fhirpathpy_models

from fhir_server.search.errors import SearchError
from fhir_server.search.extract import extract
from fhir_server.search.matcher import UnsupportedFilter, matches, stored_form
from fhir_server.search.paths import compile_path
from fhir_server.search.plan import compile_query, sort_spec
from fhir_server.search.query import Chain, Clause, Has, parse_query
from fhir_server.search.registry import registry, split_union
from fhir_server.search.text import fold
from fhir_server.search.types import date as date_type
from fhir_server.search.types import reference as reference_type
from fhir_server.search.types import split_escaped

EXAMPLES = Path(__file__).parent / "data" / "r4-examples.ndjson.gz"
DAY = 86_400_000


def _example(rtype: str, rid: str) -> dict:
    for line in gzip.decompress(EXAMPLES.read_bytes()).splitlines():
        resource = orjson.loads(line)
        if resource["resourceType"] == rtype and resource.get("id") == rid:
            return resource
    raise KeyError(rid)


# --- registry and expressions -------------------------------------------------------------------


def test_multi_base_expressions_are_split_per_type():
    assert registry().get("Practitioner", "name").expression == "Practitioner.name"
    assert registry().get("Patient", "phone").expression == "Patient.telecom.where(system='phone')"
    patient = registry().get("Observation", "patient")
    assert patient.expression == "Observation.subject.where(resolve() is Patient)"
    assert patient.single and patient.path.compiled
    assert registry().get("Observation", "_tag").expression == "Resource.meta.tag"
    assert registry().get("Observation", "_id").column == "_id"
    assert registry().get("Observation", "_lastUpdated").column == "ts"


def test_every_r4_expression_is_compiled():
    fallbacks = {
        (t, c)
        for t in registry()._by_type
        for c, p in registry().params(t).items()
        if p.path is not None and not p.path.compiled
    }
    assert fallbacks == set()


@pytest.mark.parametrize("expression", [
    "Patient.deceased.exists() and Patient.deceased != false",
    "Patient.active = true and Patient.gender != 'male'",
    "Patient.name.where(use='official' and family='x').exists() and Patient.gender = 'female'",
])
@pytest.mark.parametrize("patient", [
    {}, {"deceasedBoolean": True}, {"deceasedBoolean": False}, {"deceasedDateTime": "2020-01-01"},
    {"active": True, "gender": "female"}, {"active": True, "gender": "male"}, {"active": False},
    {"name": [{"use": "official", "family": "x"}], "gender": "female"},
    {"name": [{"use": "official", "family": "y"}, {"use": "official", "family": "x"}]},
])
def test_compiled_conjunctions_agree_with_fhirpath(expression: str, patient: dict) -> None:
    resource = {"resourceType": "Patient", **patient}
    compiled = compile_path(expression, "Patient")
    expected = [v for v in fhirpathpy.evaluate(resource, expression, model=fhirpathpy_models["r4"]) if v is not None]
    # An `and` inside where() is not a clause boundary: that expression stays with fhirpathpy.
    assert compiled.compiled == ("where" not in expression)
    assert [value for _, value in compiled.extract(resource)] == expected


def test_split_union_respects_parentheses_and_quotes():
    assert split_union("(A.b as X) | A.c.where(d='x|y') | A.e") == ["(A.b as X)", "A.c.where(d='x|y')", "A.e"]


def test_compiled_paths_type_choice_elements():
    obs = {
        "resourceType": "Observation",
        "effectivePeriod": {"start": "2020"},
        "valueQuantity": {"value": 1},
        "component": [{"valueString": "x"}, {"valueQuantity": {"value": 2}}],
    }
    assert compile_path("Observation.effective", "Observation").extract(obs) == [
        ("Period", {"start": "2020"})
    ]
    assert compile_path("(Observation.value as Quantity)", "Observation").extract(obs) == [
        ("Quantity", {"value": 1})
    ]
    component = compile_path("Observation.component.value as Quantity", "Observation")
    assert component.extract(obs) == [("Quantity", {"value": 2})] and not component.single


def test_modifiers_and_prefixes_per_type():
    assert "exact" in registry().get("Patient", "name").modifiers
    assert "of-type" in registry().get("Patient", "identifier").modifiers
    assert registry().get("Patient", "birthdate").prefixes >= {"eq", "sa", "ap"}
    assert not registry().get("Patient", "gender").prefixes


def test_custom_search_parameter_round_trip():
    definition = {
        "resourceType": "SearchParameter",
        "url": "http://example.org/sp/nickname",
        "code": "nickname",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.name.where(use='nickname').given",
    }
    patient = {
        "resourceType": "Patient",
        "id": "x",
        "name": [{"use": "nickname", "given": ["Bobby"]}, {"use": "official", "given": ["Robert"]}],
    }
    registry().register(definition)
    try:
        assert extract("Patient", patient)["nickname"] == {"v": "bobby", "x": "Bobby"}
        assert parse_query("Patient", [("nickname", "bob")]).criteria
    finally:
        registry().unregister(definition["url"])
    assert "nickname" not in extract("Patient", patient)
    assert parse_query("Patient", [("nickname", "bob")]).unknown == ["nickname"]


# --- extraction ---------------------------------------------------------------------------------


def test_fold_is_case_and_accent_insensitive():
    assert fold("Ärzte ÉMILE") == "arzte emile"
    assert fold("Straße") == "strasse"


def test_patient_example_layout():
    sp = extract("Patient", _example("Patient", "example"))
    assert set(sp["name"]["v"]) == {"chalmers", "peter", "james", "jim", "windsor"}
    assert sp["family"]["x"] == ["Chalmers", "Windsor"]
    assert sp["gender"] == {"t": ["male", "|male"]}
    assert sp["identifier"]["t"] == ["12345", "urn:oid:1.2.36.146.595.217.0.1|12345"]
    assert sp["identifier"]["o"] == "http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345"
    start = date_type.parse_range("1974-12-25")[0]
    assert sp["birthdate"] == {"s": start, "e": start + DAY - 1}
    assert sp["organization"] == {"r": "Organization/1"}
    assert sp["@compartment"] == ["Patient/example"]


def test_observation_composites_pair_values_per_component():
    sp = extract("Observation", _example("Observation", "blood-pressure"))
    elements = sp["component-code-value-quantity"]
    assert [e["c1"]["lo"] for e in elements] == [107.0, 60.0]
    assert "http://loinc.org|8480-6" in elements[0]["c0"]["t"]
    assert elements[0]["c1"]["nc"] == "Pa"
    assert sp["@compartment"] == ["Patient/example", "Practitioner/example"]


@pytest.mark.parametrize(
    ("text", "start", "length_ms"),
    [
        ("2020", "2020-01-01T00:00:00Z", 366 * DAY),
        ("2021-02", "2021-02-01T00:00:00Z", 28 * DAY),
        ("2020-01-15", "2020-01-15T00:00:00Z", DAY),
        ("2020-01-15T10:00:00+02:00", "2020-01-15T08:00:00Z", 1000),
        ("2020-01-15T10:00:00.25Z", "2020-01-15T10:00:00.250Z", 10),
        ("2020-01-15T10:00:00.123Z", "2020-01-15T10:00:00.123Z", 1),
        ("2020-01-15T10:00", "2020-01-15T10:00:00Z", 60_000),
    ],
)
def test_date_ranges(text, start, length_ms):
    lo, hi = date_type.parse_range(text)
    assert (lo, hi) == (date_type.parse_range(start)[0], date_type.parse_range(start)[0] + length_ms - 1)


@pytest.mark.parametrize("text", ["2020-13", "2020-02-30", "20200101", "2020-01-01T25:00", "notadate", ""])
def test_invalid_dates(text):
    with pytest.raises(ValueError):
        date_type.parse_range(text)


def test_periods_timings_and_open_ends():
    assert date_type.index([("Period", {"start": "2020"})], True) == {
        "s": date_type.parse_range("2020")[0],
        "e": date_type.HIGH,
    }
    timing = {"event": ["2020-03-01", "2020-01-01"], "repeat": {"boundsPeriod": {"end": "2020-06"}}}
    assert date_type.index([("Timing", timing)], True) == {
        "s": date_type.LOW,
        "e": date_type.parse_range("2020-06")[1],
    }


def test_quantities_normalise_ucum_units():
    obs = {
        "resourceType": "Observation",
        "valueQuantity": {
            "value": 5.4,
            "system": "http://unitsofmeasure.org",
            "code": "mg",
            "unit": "milligram",
        },
    }
    q = extract("Observation", obs)["value-quantity"]
    assert (q["lo"], q["c"], q["u"], q["nc"]) == (5.4, "mg", "milligram", "g")
    assert q["nlo"] == pytest.approx(0.0054)
    ranged = {
        "resourceType": "Condition",
        "onsetRange": {"low": {"value": 5, "code": "a", "system": "http://unitsofmeasure.org"}},
    }
    age = extract("Condition", ranged)["onset-age"]
    assert (age["lo"], age["hi"], age["nc"]) == (5.0, float("inf"), "s")


def test_references_local_absolute_canonical_identifier():
    reference_type.configure_local_bases(["http://me/fhir"])
    try:
        obs = {
            "resourceType": "Observation",
            "subject": {"reference": "http://me/fhir/Patient/1/_history/2"},
            "performer": [
                {"reference": "http://them/fhir/Practitioner/2"},
                {"reference": "#contained"},
                {"identifier": {"system": "urn:npi", "value": "9"}},
            ],
        }
        sp = extract("Observation", obs)
    finally:
        reference_type.configure_local_bases([])
    assert sp["subject"] == {"r": "Patient/1"}
    assert sp["patient"] == {"r": "Patient/1"}
    assert sp["performer"] == {"u": "http://them/fhir/Practitioner/2", "i": ["9", "urn:npi|9"]}
    plan = extract(
        "PlanDefinition", {"resourceType": "PlanDefinition", "library": ["http://x.org/Library/l|1.0"]}
    )
    assert plan["depends-on"] == {"u": ["http://x.org/Library/l|1.0", "http://x.org/Library/l"]}


def test_token_escaping_and_fallback_expressions():
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": "s|1", "value": "a\\b"}],
        "deceasedBoolean": True,
    }
    sp = extract("Patient", patient)
    assert sp["identifier"]["t"] == ["a\\\\b", "s\\|1|a\\\\b"]
    assert sp["deceased"]["t"] == ["true", "|true"]


def test_extraction_of_every_example_never_fails():
    for line in gzip.decompress(EXAMPLES.read_bytes()).splitlines():
        resource = orjson.loads(line)
        assert isinstance(extract(resource["resourceType"], resource), dict)


# --- parsing and compilation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rtype", "params", "param"),
    [
        ("Patient", [("birthdate", "notadate")], "birthdate"),
        ("Patient", [("birthdate", "zz2020")], "birthdate"),
        ("Patient", [("name:foo", "x")], "name:foo"),
        ("Patient", [("gender:in", "http://x/vs")], "gender:in"),
    ("Observation", [("code:in", "http://hl7.org/fhir/ValueSet/observation-codes")], "code:in"),
    ("Patient", [("gender:below", "x")], "gender:below"),
        ("Patient", [("gender:exact", "x")], "gender:exact"),
        ("Patient", [("name:missing", "yes")], "name:missing"),
        ("Patient", [("identifier:of-type", "a|b")], "identifier:of-type"),
        ("Patient", [("gender", "a|b|c")], "gender"),
        ("Patient", [("gender", "male,")], "gender"),
        ("Observation", [("value-quantity", "abc")], "value-quantity"),
        ("Observation", [("value-quantity", "5|mg")], "value-quantity"),
        ("Observation", [("code-value-quantity", "a")], "code-value-quantity"),
        ("Observation", [("code-value-quantity", "a$notanumber")], "code-value-quantity"),
        ("Observation", [("subject:Medication", "1")], "subject:Medication"),
        ("Observation", [("subject", "")], "subject"),
        ("Observation", [("code.name", "x")], "code.name"),
        ("Observation", [("subject.nosuchparam", "x")], "subject.nosuchparam"),
        ("Patient", [("_has:Observation:code:status", "x")], "_has:Observation:code:status"),
        ("Patient", [("_has:Observation", "x")], "_has:Observation"),
        ("Patient", [("_sort", "nosuch")], "_sort"),
        ("Patient", [("_count", "-1")], "_count"),
        ("Patient", [("_summary", "maybe")], "_summary"),
        ("Patient", [("_include", "Patient")], "_include"),
        ("Patient", [("_include", "Patient:name")], "_include"),
        ("Patient", [("_total", "all")], "_total"),
    ],
)
def test_malformed_requests_name_the_parameter(rtype, params, param):
    with pytest.raises(SearchError) as raised:
        parse_query(rtype, params)
    assert raised.value.param == param


def test_unknown_parameters_lenient_and_strict():
    query = parse_query("Patient", [("nosuch", "1"), ("_text", "x"), ("gender", "male")])
    assert query.unknown == ["nosuch", "_text"] and len(query.criteria) == 1
    with pytest.raises(SearchError):
        parse_query("Patient", [("nosuch", "1")], strict=True)
    with pytest.raises(SearchError):
        parse_query("NoSuchType", [])


def test_commas_or_repeats_and_escapes():
    query = parse_query("Patient", [("family", "a\\,b,c"), ("family", "d")])
    assert [c.values for c in query.criteria] == [("a,b", "c"), ("d",)]
    token = parse_query("Patient", [("identifier", "s\\|x|v\\,w")]).criteria[0].values[0]
    assert (token.system, token.code) == ("s|x", "v,w")
    composite = parse_query("Observation", [("code-value-string", "a\\$b$c\\,d")]).criteria[0].values[0]
    assert composite[0].code == "a$b" and composite[1] == "c,d"
    assert split_escaped("a\\|b|c", "|") == ["a|b", "c"]
    assert split_escaped("a\\|b$c", "$", keep_escapes=True) == ["a\\|b", "c"]


def test_chains_and_has_parse_into_subqueries():
    query = parse_query("Observation", [("subject:Patient.name", "x"), ("_has:Provenance:target:agent", "y")])
    chain, has = query.criteria
    assert isinstance(chain, Chain) and list(chain.criteria) == ["Patient"]
    assert isinstance(chain.criteria["Patient"], Clause)
    assert isinstance(has, Has) and (has.resource_type, has.reference) == ("Provenance", "target")
    plan = compile_query(query)
    assert [(p.resource_type, p.collect, p.kind) for p in plan.pending] == [
        ("Patient", "_id", "chain"),
        ("Provenance", "sp.target.r", "has"),
    ]
    assert plan.pending[0].to_condition(["1", "2"]) == {"sp.subject.r": {"$in": ["Patient/1", "Patient/2"]}}
    assert plan.pending[1].to_condition(["Observation/9", "Patient/3"]) == {"_id": {"$in": ["9"]}}
    several = compile_query(parse_query("Observation", [("performer.name", "x")]))
    assert len(several.alternatives) == 1 and len(several.alternatives[0]) > 1


def test_result_parameters_are_kept_apart():
    query = parse_query(
        "Observation",
        [
            ("_sort", "-date,code"),
            ("_count", "10"),
            ("_include", "Observation:subject:Patient"),
            ("_revinclude:iterate", "Provenance:target"),
            ("_summary", "count"),
            ("_elements", "code,subject"),
            ("_total", "accurate"),
            ("_contained", "both"),
            ("_containedType", "contained"),
            ("code", "x"),
        ],
    )
    result = query.result
    assert len(query.criteria) == 1
    assert sort_spec(result.sort) == [("sp.date.e", -1), ("sp.code.t", 1), ("_id", 1)]
    assert (result.count, result.summary, result.total, result.contained) == (10, "count", "accurate", "both")
    assert result.include[0].target == "Patient" and result.revinclude[0].iterate
    assert result.elements == ["code", "subject"] and result.contained_type == "contained"


def test_filters_always_exclude_tombstones():
    assert compile_query(parse_query("Patient", [])).filter == {"del": {"$exists": False}}
    plan = compile_query(parse_query("Patient", [("gender:missing", "true")]))
    assert plan.filter == {"del": {"$exists": False}, "sp.gender": {"$exists": False}}


def test_matcher_semantics_and_unsupported_operators() -> None:
    document = {"_id": "o1", "sp": {"category": {"t": ["laboratory", "|laboratory"]},
                                    "date": [{"s": 1, "e": 5}, {"s": 10, "e": 20}]}}
    assert matches({"sp.category.t": "laboratory"}, document)
    assert not matches({"sp.category.t": {"$nin": ["laboratory"]}}, document)
    assert matches({"sp.missing.t": {"$nin": ["x"]}, "sp.missing": {"$exists": False}}, document)
    assert matches({"sp.missing.t": None}, document) and not matches({"sp.category.t": None}, document)
    # $elemMatch holds every condition on one element; plain dotted conditions may use different ones.
    assert not matches({"sp.date": {"$elemMatch": {"s": {"$lt": 2}, "e": {"$gt": 10}}}}, document)
    assert matches({"sp.date.s": {"$lt": 2}, "sp.date.e": {"$gt": 10}}, document)
    assert not matches({"sp.date.s": {"$gt": True}}, document)  # booleans do not compare with numbers
    with pytest.raises(UnsupportedFilter):
        matches({"$where": "true"}, document)
    with pytest.raises(UnsupportedFilter):
        matches({"sp.category.t": {"$size": 2}}, document)


def test_stored_form_has_the_columns_filters_address() -> None:
    resource = {"resourceType": "Patient", "id": "p1", "meta": {"lastUpdated": "2024-05-01T10:20:30.123Z"},
                "gender": "female"}
    plan = compile_query(parse_query("Patient", [("_id", "p1"), ("_lastUpdated", "2024-05-01"),
                                                 ("gender", "female")], strict=True))
    assert matches(plan.filter, stored_form("Patient", resource))
    plan = compile_query(parse_query("Patient", [("_lastUpdated", "gt2024-05-01")], strict=True))
    assert not matches(plan.filter, stored_form("Patient", resource))
