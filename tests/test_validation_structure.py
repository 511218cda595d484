"""Structural validation of R4 resources and the compiled element model: pure functions, no database.

The official R4 examples must pass (bar the ones that are genuinely invalid R4); each JSON-format
and definition rule has table-driven negative cases asserting the exact issue codes and
FHIRPath expressions.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import typing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_server.definitions import resource_types, structure_definitions
from fhir_server.definitions.model import compile_structure_definition, element_model, summary_elements
from fhir_server.validation import Issue, r4b_model_types, validate_resource

EXAMPLES_FILE = Path(__file__).parent / "data" / "r4-examples.ndjson.gz"
with gzip.open(EXAMPLES_FILE, "rt", encoding="utf-8") as _lines:
    EXAMPLES = [json.loads(line) for line in _lines if line.strip()]

# Official examples that are not valid R4, and why.
INVALID_EXAMPLES = {
    # Its nested items (item.item, item.item.item) have no linkId, which Questionnaire.item
    # requires (1..1); the validator shipped with the spec reports the same.
    ("Questionnaire", "qs1"): "required",
}

EXT = [{"url": "http://example.org/x", "valueString": "x"}]
BIRTHS = "Patient.multipleBirthInteger"


def codes_and_places(resource: object) -> list[tuple[str, str]]:
    return [(issue.code, issue.expression) for issue in validate_resource(resource)]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e['resourceType']}-{e.get('id', '')}")
def test_official_example(example: dict) -> None:
    issues = validate_resource(example)
    expected_code = INVALID_EXAMPLES.get((example["resourceType"], example.get("id")))
    if expected_code is None:
        assert issues == []
    else:
        assert issues and {i.code for i in issues} == {expected_code}


def test_invalid_example_reports_each_missing_link_id() -> None:
    qs1 = next(e for e in EXAMPLES if e["resourceType"] == "Questionnaire" and e["id"] == "qs1")
    places = [issue.expression for issue in validate_resource(qs1)]
    assert places[0] == "Questionnaire.item[0].item[0].linkId"
    assert all(re.fullmatch(r"Questionnaire(\.item\[\d+\])+\.linkId", p) for p in places)


def test_examples_cover_many_types() -> None:
    assert len(EXAMPLES) == 704
    assert len({e["resourceType"] for e in EXAMPLES}) > 120


def patient(**properties: object) -> dict:
    return {"resourceType": "Patient", **properties}


def observation(**properties: object) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, **properties}


def named(**properties: object) -> dict:
    """A Patient with one name carrying `properties`."""
    return patient(name=[properties])


INVALID = [
    # top level and resource types
    ("not an object", ["Patient"], [("structure", "")]),
    ("no resourceType", {"id": "x"}, [("required", "")]),
    ("unknown resourceType", {"resourceType": "Foo"}, [("not-supported", "")]),
    ("abstract resourceType", {"resourceType": "DomainResource"}, [("not-supported", "")]),
    ("resourceType not a string", {"resourceType": 3}, [("structure", "")]),
    ("resource id pattern", patient(id="a b"), [("value", "Patient.id")]),
    ("resource id too long", patient(id="a" * 65), [("value", "Patient.id")]),
    ("resource id number", patient(id=1), [("structure", "Patient.id")]),
    # unknown properties
    ("unknown property", patient(foo=1), [("structure", "Patient.foo")]),
    ("unknown nested property", named(family="x", foo="y"), [("structure", "Patient.name[0].foo")]),
    ("bad choice suffix", observation(valueFoo="x"), [("structure", "Observation.valueFoo")]),
    ("two choices of one [x]", observation(valueString="x", valueInteger=1),
     [("structure", "Observation.valueInteger")]),
    ("value and another choice's extension", observation(valueString="x", _valueBoolean={"extension": EXT}),
     [("structure", "Observation.valueBoolean")]),
    ("resourceType below the top", named(resourceType="HumanName", family="x"),
     [("structure", "Patient.name[0].resourceType")]),
    ("_id on a resource", patient(_id={"extension": EXT}), [("structure", "Patient._id")]),
    ("_name on a complex element", patient(_maritalStatus={"extension": EXT}),
     [("structure", "Patient._maritalStatus")]),
    ("fhir_comments (not R4)", patient(fhir_comments=["x"]), [("structure", "Patient.fhir_comments")]),
    # JSON types and values of primitives
    ("boolean as string", patient(active="true"), [("structure", "Patient.active")]),
    ("boolean as number", patient(active=1), [("structure", "Patient.active")]),
    ("integer as string", patient(multipleBirthInteger="2"), [("structure", BIRTHS)]),
    ("integer as decimal", patient(multipleBirthInteger=2.5), [("structure", BIRTHS)]),
    ("integer as boolean", patient(multipleBirthInteger=True), [("structure", BIRTHS)]),
    ("integer above 32 bits", patient(multipleBirthInteger=2**31), [("value", BIRTHS)]),
    ("integer below 32 bits", patient(multipleBirthInteger=-(2**31) - 1), [("value", BIRTHS)]),
    ("positiveInt zero", {"resourceType": "Appointment", "status": "booked", "participant": [
        {"status": "accepted", "actor": {"display": "x"}}], "minutesDuration": 0},
     [("value", "Appointment.minutesDuration")]),
    ("unsignedInt negative", {"resourceType": "Bundle", "type": "searchset", "total": -1},
     [("value", "Bundle.total")]),
    ("decimal as string", observation(valueQuantity={"value": "1.0"}),
     [("structure", "Observation.valueQuantity.value")]),
    ("decimal as boolean", observation(valueQuantity={"value": False}),
     [("structure", "Observation.valueQuantity.value")]),
    ("decimal not finite", observation(valueQuantity={"value": float("nan")}),
     [("value", "Observation.valueQuantity.value")]),
    ("string as number", patient(gender=1), [("structure", "Patient.gender")]),
    ("string as object", named(family={"value": "x"}), [("structure", "Patient.name[0].family")]),
    ("empty string", named(family=""), [("value", "Patient.name[0].family")]),
    ("whitespace-only string", named(family="  \t"), [("value", "Patient.name[0].family")]),
    ("string over 1 MB", named(family="x" * (1024 * 1024 + 1)), [("value", "Patient.name[0].family")]),
    ("form feed in string (outside the R4 regex)", named(family="a\fb"),
     [("value", "Patient.name[0].family")]),
    ("code with double space", patient(gender="fe  male"), [("value", "Patient.gender")]),
    ("date with month 13", patient(birthDate="2020-13-01"), [("value", "Patient.birthDate")]),
    ("dateTime without seconds", patient(deceasedDateTime="2020-01-01T10:00Z"),
     [("value", "Patient.deceasedDateTime")]),
    ("dateTime with time but no zone", patient(deceasedDateTime="2020-01-01T10:00:00"),
     [("value", "Patient.deceasedDateTime")]),
    ("instant without time", {"resourceType": "Bundle", "type": "collection", "timestamp": "2020-01-01"},
     [("value", "Bundle.timestamp")]),
    ("time of day 24", {"resourceType": "Location", "hoursOfOperation": [{"openingTime": "24:00:00"}]},
     [("value", "Location.hoursOfOperation[0].openingTime")]),
    ("uri with a space", patient(implicitRules="http://a b"), [("value", "Patient.implicitRules")]),
    ("base64Binary not in quads", patient(photo=[{"data": "QUJDRA"}]), [("value", "Patient.photo[0].data")]),
    ("base64Binary with spaces, no match", patient(photo=[{"data": "QUJD  " * 30 + "!"}]),
     [("value", "Patient.photo[0].data")]),
    ("uuid in upper case", patient(extension=[
        {"url": "http://e.org/u", "valueUuid": "urn:uuid:C757873D-EC9A-4326-A141-556F43239520"}]),
     [("value", "Patient.extension[0].valueUuid")]),
    ("oid without prefix", patient(identifier=[{"system": "urn:ietf:rfc:3986", "value": "x"}],
                                   extension=[{"url": "http://e.org/o", "valueOid": "1.2.3"}]),
     [("value", "Patient.extension[0].valueOid")]),
    # arrays, objects, nulls
    ("object where an array belongs", patient(name={"family": "x"}), [("structure", "Patient.name")]),
    ("array where max is 1", patient(gender=["male"]), [("structure", "Patient.gender")]),
    ("array for a complex max-1 element", patient(maritalStatus=[{"text": "x"}]),
     [("structure", "Patient.maritalStatus")]),
    ("empty array", patient(name=[]), [("structure", "Patient.name")]),
    ("empty object in an array", patient(name=[{}]), [("structure", "Patient.name[0]")]),
    ("empty object", patient(maritalStatus={}), [("structure", "Patient.maritalStatus")]),
    ("null primitive", patient(gender=None), [("structure", "Patient.gender")]),
    ("null complex", patient(maritalStatus=None), [("structure", "Patient.maritalStatus")]),
    ("null in a complex array", patient(name=[None]), [("structure", "Patient.name[0]")]),
    ("null in a primitive array without _name", named(given=["a", None]),
     [("structure", "Patient.name[0].given[1]")]),
    ("null in both arrays at one index", named(given=["a", None], _given=[None, None]),
     [("structure", "Patient.name[0].given[1]")]),
    ("null primitive paired with _name", patient(gender=None, _gender={"extension": EXT}),
     [("structure", "Patient.gender")]),
    # `_name` siblings
    ("misaligned _name array", named(given=["a", "b"], _given=[{"extension": EXT}]),
     [("structure", "Patient.name[0].given")]),
    ("_name object for an array", named(given=["a"], _given={"extension": EXT}),
     [("structure", "Patient.name[0].given")]),
    ("_name array for a single value", patient(gender="male", _gender=[{"extension": EXT}]),
     [("structure", "Patient.gender")]),
    ("_name null alone", named(_given=[None]), [("structure", "Patient.name[0].given[0]")]),
    ("_name empty object", patient(_gender={}), [("structure", "Patient.gender")]),
    ("_name empty array", named(given=["a"], _given=[]), [("structure", "Patient.name[0].given")]),
    ("_name with a value", patient(_gender={"value": "male"}), [("structure", "Patient.gender.value")]),
    ("_name extension without url", patient(_gender={"extension": [{"valueString": "x"}]}),
     [("required", "Patient.gender.extension[0].url")]),
    ("_name entry extension without url", named(given=["a"], _given=[{"extension": [{"valueCode": "x"}]}]),
     [("required", "Patient.name[0].given[0].extension[0].url")]),
    ("_name id not a string", patient(_gender={"id": 5}), [("structure", "Patient.gender.id")]),
    # cardinality
    ("required element missing", {"resourceType": "Observation", "code": {"text": "x"}},
     [("required", "Observation.status")]),
    ("required complex element missing", {"resourceType": "Observation", "status": "final"},
     [("required", "Observation.code")]),
    ("required choice missing", {"resourceType": "Questionnaire", "status": "draft", "item": [
        {"linkId": "1", "type": "choice", "answerOption": [{"initialSelected": True}]}]},
     [("required", "Questionnaire.item[0].answerOption[0].value[x]")]),
    ("required in a backbone", patient(communication=[{"preferred": True}]),
     [("required", "Patient.communication[0].language")]),
    ("required through contentReference", {"resourceType": "Questionnaire", "status": "draft", "item": [
        {"linkId": "1", "type": "group", "item": [{"type": "string"}]}]},
     [("required", "Questionnaire.item[0].item[0].linkId")]),
    ("required through contentReference elsewhere", {"resourceType": "Bundle", "type": "collection",
                                                     "entry": [{"link": [{"url": "http://x"}]}]},
     [("required", "Bundle.entry[0].link[0].relation")]),
    ("max 0 of a constrained type (SimpleQuantity)",
     observation(valueRange={"low": {"value": 1, "comparator": "<"}}),
     [("structure", "Observation.valueRange.low.comparator")]),
    # extensions
    ("extension without url", patient(extension=[{"valueString": "x"}]),
     [("required", "Patient.extension[0].url")]),
    ("extension url not a string", patient(extension=[{"url": 5, "valueString": "x"}]),
     [("structure", "Patient.extension[0].url")]),
    ("extension url with _url", patient(extension=[{"url": "http://e.org/a", "_url": {"id": "a"}}]),
     [("structure", "Patient.extension[0]._url")]),
    ("extension value of the wrong JSON type",
     patient(extension=[{"url": "http://e.org/a", "valueBoolean": "yes"}]),
     [("structure", "Patient.extension[0].valueBoolean")]),
    ("extension value of an unknown type", patient(extension=[{"url": "http://e.org/a", "valueFoo": 1}]),
     [("structure", "Patient.extension[0].valueFoo")]),
    ("extension with two values", patient(extension=[{"url": "http://e.org/a", "valueString": "x",
                                                      "valueCode": "y"}]),
     [("structure", "Patient.extension[0].valueCode")]),
    ("extension complex value checked by type", patient(extension=[{"url": "http://e.org/a",
                                                                    "valueCoding": {"code": "a  b"}}]),
     [("value", "Patient.extension[0].valueCoding.code")]),
    ("nested modifierExtension without url", patient(modifierExtension=[
        {"url": "http://e.org/a", "extension": [{"valueString": "x"}]}]),
     [("required", "Patient.modifierExtension[0].extension[0].url")]),
    ("extension not an array", patient(extension={"url": "http://e.org/a", "valueString": "x"}),
     [("structure", "Patient.extension")]),
    # contained and nested resources
    ("contained without id", patient(contained=[{"resourceType": "Organization", "name": "x"}]),
     [("required", "Patient.contained[0].id")]),
    ("contained containing", patient(contained=[{"resourceType": "Organization", "id": "o", "contained": [
        {"resourceType": "Organization", "id": "p"}]}]),
     [("structure", "Patient.contained[0].contained")]),
    ("contained validated as a resource", patient(contained=[{"resourceType": "Organization", "id": "o",
                                                              "active": "yes"}]),
     [("structure", "Patient.contained[0].active")]),
    ("contained of unknown type", patient(contained=[{"resourceType": "Foo", "id": "f"}]),
     [("not-supported", "Patient.contained[0]")]),
    ("contained not an object", patient(contained=["Organization/1"]),
     [("structure", "Patient.contained[0]")]),
    ("Bundle entry validated as a resource", {"resourceType": "Bundle", "type": "collection",
                                              "entry": [{"resource": patient(active="yes")}]},
     [("structure", "Bundle.entry[0].resource.active")]),
    ("Bundle entry without resourceType", {"resourceType": "Bundle", "type": "collection",
                                           "entry": [{"resource": {"id": "x"}}]},
     [("required", "Bundle.entry[0].resource")]),
    ("Parameters resource validated", {"resourceType": "Parameters", "parameter": [
        {"name": "p", "resource": patient(gender=["male"])}]},
     [("structure", "Parameters.parameter[0].resource.gender")]),
    ("Parameters part through contentReference", {"resourceType": "Parameters", "parameter": [
        {"name": "p", "part": [{"valueString": "x"}]}]},
     [("required", "Parameters.parameter[0].part[0].name")]),
    # narrative
    ("div not a div", patient(text={"status": "generated", "div": "<p>x</p>"}),
     [("value", "Patient.text.div")]),
    ("div not a string", patient(text={"status": "generated", "div": {"p": "x"}}),
     [("structure", "Patient.text.div")]),
    ("div missing", patient(text={"status": "generated"}), [("required", "Patient.text.div")]),
    ("extension on div",
     patient(text={"status": "generated", "div": "<div>x</div>", "_div": {"extension": EXT}}),
     [("structure", "Patient.text.div.extension")]),
    # the R4B model pass (real dates, decodable base64)
    ("R4B: day 30 of February", patient(birthDate="2021-02-30"), [("value", "Patient.birthDate")]),
    ("R4B: in a Bundle entry", {"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": patient(birthDate="2021-02-30")}]},
     [("value", "Bundle.entry[0].resource.birthDate")]),
    ("R4B: undecodable base64", patient(photo=[{"data": "A=BC"}]), [("value", "Patient.photo[0].data")]),
]


@pytest.mark.parametrize(("resource", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid(resource: object, expected: list[tuple[str, str]]) -> None:
    assert codes_and_places(resource) == expected


VALID = [
    ("empty Patient", patient()),
    ("null placeholders paired with _name", named(given=["a", None, "c"],
                                                  _given=[None, {"extension": EXT}, {"id": "g3"}])),
    ("_name without a value", patient(_gender={"extension": EXT})),
    ("required element given by its _name", {"resourceType": "Observation", "_status": {"extension": EXT},
                                             "code": {"text": "x"}}),
    ("_name beside an array, no value array", named(_given=[{"extension": EXT}])),
    ("choice with its own _name", observation(valueString="x", _valueString={"id": "v"})),
    ("integer range edges", patient(multipleBirthInteger=-(2**31))),
    ("decimal written as an integer", observation(valueQuantity={"value": 3})),
    ("decimal with exponent", observation(valueQuantity={"value": 1e-30})),
    ("leap second", patient(deceasedDateTime="2016-12-31T23:59:60Z")),
    ("partial dates", patient(birthDate="1970", deceasedDateTime="1999-12")),
    ("base64Binary with whitespace", patient(photo=[{"data": "QUJD\nRA=="}])),
    ("non-breaking space inside a string", named(family="van\u00a0Dijk")),
    ("div with attributes", patient(text={"status": "generated",
                                          "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'})),
    ("contained with id", patient(contained=[{"resourceType": "Organization", "id": "o"}],
                                  managingOrganization={"reference": "#o"})),
    # R4B false rejections that are excluded
    ("UUID of version 1 (R4B wants 4)", patient(extension=[
        {"url": "http://e.org/u", "valueUuid": "urn:uuid:c757873d-ec9a-1326-a141-556f43239520"}])),
    ("Extension.valueMeta (absent in R4B)", patient(extension=[{"url": "http://e.org/m",
                                                                "valueMeta": {"versionId": "1"}}])),
    # types without an R4B model are validated by the strict walker alone
    ("R4-only type", {"resourceType": "MedicinalProduct", "name": [{"productName": "x"}]}),
    ("R4-only type in a Bundle", {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "SubstancePolymer", "id": "s"}}, {"resource": patient()}]}),
]


@pytest.mark.parametrize("resource", [case[1] for case in VALID], ids=[c[0] for c in VALID])
def test_valid(resource: dict) -> None:
    assert validate_resource(resource) == []


def test_every_problem_is_reported_not_only_the_first() -> None:
    resource = patient(active="yes", gender=["male"], foo=1,
                       name=[{"given": ["", "b"]}], contact=[{"gender": "x  y"}])
    assert codes_and_places(resource) == [
        ("structure", "Patient.active"),
        ("structure", "Patient.gender"),
        ("structure", "Patient.foo"),
        ("value", "Patient.name[0].given[0]"),
        ("value", "Patient.contact[0].gender"),
    ]


def test_issue_shape() -> None:
    [issue] = validate_resource(patient(active="true"))
    assert issue == Issue("error", "structure", issue.diagnostics, "Patient.active")
    assert "boolean" in issue.diagnostics


def test_bad_choice_suffix_is_named_in_the_diagnostics() -> None:
    [issue] = validate_resource(observation(valueFoo="x"))
    assert "Foo" in issue.diagnostics and "Observation.value[x]" in issue.diagnostics


def test_input_is_not_modified() -> None:
    resource = named(given=["a", None], _given=[None, {"extension": EXT}], family="x")
    before = copy.deepcopy(resource)
    validate_resource(resource)
    assert resource == before


def test_nesting_too_deep_is_one_issue() -> None:
    item: dict = {"linkId": "x", "type": "group"}
    root = item
    for _ in range(1500):
        child = {"linkId": "x", "type": "group"}
        item["item"] = [child]
        item = child
    issues = validate_resource({"resourceType": "Questionnaire", "status": "draft", "item": [root]})
    assert [(i.code, i.expression) for i in issues] == [("too-costly", "")]


# The compiled element model


def test_choice_elements_expand_to_json_names() -> None:
    patient_model = element_model("Patient")
    deceased = patient_model.properties["deceasedDateTime"]
    assert deceased.element is patient_model.properties["deceasedBoolean"].element
    assert deceased.element.choice and deceased.element.types == ("boolean", "dateTime")
    assert deceased.type == "dateTime" and "deceased" not in patient_model.properties
    assert "_deceasedDateTime" in patient_model.extensions


def test_cardinality_and_arrays() -> None:
    properties = element_model("Patient").properties
    name = properties["name"].element
    assert (name.min, name.max, name.array) == (0, None, True)
    assert properties["gender"].element.max == 1 and not properties["gender"].element.array
    assert element_model("Observation").properties["status"].element.min == 1


def test_backbone_children_inline_and_content_reference_shared() -> None:
    item = element_model("Questionnaire").properties["item"].model
    assert item.kind == "backbone" and item.name == "Questionnaire.item"
    assert item.properties["item"].model is item
    assert element_model("Bundle").properties["entry"].model.properties["link"].model is (
        element_model("Bundle").properties["link"].model)


def test_constrained_data_type_profile_is_used() -> None:
    low = element_model("Range").properties["low"]
    assert low.type == "Quantity" and low.model is element_model("SimpleQuantity")
    assert low.model.properties["comparator"].element.max == 0


@pytest.mark.parametrize(("name", "json_kind", "low", "high"), [
    ("boolean", "boolean", None, None),
    ("integer", "integer", -(2**31), 2**31 - 1),
    ("positiveInt", "integer", -(2**31), 2**31 - 1),
    ("unsignedInt", "integer", -(2**31), 2**31 - 1),
    ("decimal", "decimal", None, None),
    ("string", "string", None, None),
    ("dateTime", "string", None, None),
    ("base64Binary", "string", None, None),
])
def test_primitive_json_kinds(name: str, json_kind: str, low: int | None, high: int | None) -> None:
    primitive = element_model(name).primitive
    assert primitive is not None
    assert (primitive.json_kind, primitive.min_value, primitive.max_value) == (json_kind, low, high)


def test_primitive_regexes_come_from_the_definitions() -> None:
    assert element_model("positiveInt").primitive.regex.pattern == "[1-9][0-9]*"
    assert element_model("id").primitive.regex.fullmatch("a" * 64)
    assert element_model("string").primitive.max_length == 1024 * 1024
    assert element_model("code").primitive.max_length == 1024 * 1024  # inherited from string
    assert element_model("uri").primitive.max_length is None
    # Element.id and Extension.url are FHIRPath System types: JSON strings without `_name`.
    url = element_model("Extension").properties["url"]
    assert url.type == "uri" and not url.extensible and "_url" not in element_model("Extension").extensions
    assert element_model("Patient").properties["id"].type == "id"


def _r4_base64_regex() -> re.Pattern[str]:
    value = next(e for e in structure_definitions()["base64Binary"]["snapshot"]["element"]
                 if e["path"] == "base64Binary.value")
    regex = next(x["valueString"] for x in value["type"][0]["extension"] if x["url"].endswith("/regex"))
    return re.compile(regex, re.ASCII)


@given(st.text(alphabet="QUJD=+/ \n!", max_size=14))
def test_linear_base64_regex_accepts_what_r4s_does(text: str) -> None:
    ours = element_model("base64Binary").primitive.regex
    assert bool(ours.fullmatch(text)) == bool(_r4_base64_regex().fullmatch(text))


def test_summary_elements() -> None:
    summary = summary_elements("Patient")
    assert {"id", "meta", "identifier", "name", "birthDate", "deceasedBoolean", "link"} <= summary
    assert not {"photo", "contact", "text", "contained", "communication"} & summary


def test_profile_snapshot_compiles_to_the_same_form() -> None:
    vitalsigns = compile_structure_definition(structure_definitions()["vitalsigns"])
    assert vitalsigns.properties["subject"].element.min == 1
    assert element_model("Observation").properties["subject"].element.min == 0
    assert vitalsigns.properties["code"].model is element_model("CodeableConcept")
    assert set(vitalsigns.properties) <= set(element_model("Observation").properties)
    referenced = compile_structure_definition(structure_definitions()["provenance-relevant-history"])
    entity = referenced.properties["entity"].model
    assert entity.properties["agent"].model is referenced.properties["agent"].model


# The R4B model pass: which types it may judge


def _unwrap(annotation: object) -> tuple[object, bool]:
    array = False
    while True:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) is list:
            array, annotation = True, args[0]
        elif typing.get_origin(annotation) in (typing.Union, type(int | None)):
            annotation = args[0]
        else:
            return annotation, array


# fhir_core's names for R4 primitives whose R4B class is named differently.
R4B_TYPE_NAMES = {"EncodedBytes": "base64Binary", "UuidVersion": "uuid"}


def _r4b_differences(model: object, cls: type, path: str, seen: set, out: list[str]) -> None:
    """Differences that would make R4B reject valid R4: R4 elements R4B lacks, or has with
    another array-ness, type or a requirement R4 does not make."""
    from fhir.resources.R4B import get_fhir_model_class

    if (id(model), cls) in seen:
        return
    seen.add((id(model), cls))
    fields = {f.alias or n: f for n, f in cls.model_fields.items()
              if (f.json_schema_extra or {}).get("element_property")}
    for name, prop in model.properties.items():
        place = f"{path}.{name}"
        field = fields.get(name)
        if field is None:
            out.append(f"{place} missing")
            continue
        annotation, array = _unwrap(field.annotation)
        if typing.get_origin(annotation) is typing.Annotated:
            marker = type(typing.get_args(annotation)[1]).__name__
            type_name, sub = R4B_TYPE_NAMES.get(marker, marker[0].lower() + marker[1:]), None
        elif annotation is bool:
            type_name, sub = "boolean", None
        else:
            type_name = getattr(annotation, "__name__", "").removesuffix("Type")
            sub = get_fhir_model_class(type_name) if type_name != "Resource" else None
        if array != prop.element.array:
            out.append(f"{place} array")
        if (field.json_schema_extra.get("element_required") or field.is_required()) and not prop.element.min:
            out.append(f"{place} required")
        if prop.model is not None and prop.model.kind == "backbone":
            _r4b_differences(prop.model, sub, place, seen, out)
        elif type_name != prop.type:
            out.append(f"{place} type")
        elif sub is not None:
            _r4b_differences(prop.model, sub, prop.type, seen, out)


def test_r4b_model_types_are_the_ones_matching_r4() -> None:
    from fhir.resources.R4B import get_fhir_model_class

    no_model, own_differences, data_type_differences = set(), set(), set()
    for resource_type in resource_types():
        try:
            cls = get_fhir_model_class(resource_type)
        except ValueError:
            no_model.add(resource_type)
            continue
        differences: list[str] = []
        _r4b_differences(element_model(resource_type), cls, resource_type, set(), differences)
        own = {d for d in differences if d.startswith(f"{resource_type}.")}
        if own:
            own_differences.add(resource_type)
        data_type_differences |= set(differences) - own
    assert len(no_model) == 18 and {t for t in no_model if not t.startswith("MedicinalProduct")} == {
        "EffectEvidenceSynthesis", "RiskEvidenceSynthesis", "SubstanceSpecification", "SubstanceNucleicAcid",
        "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation", "SubstanceSourceMaterial"}
    assert own_differences == {"Evidence", "EvidenceVariable"}
    # R4B has no Meta choice; the validator ignores R4B's `extra_forbidden` errors for them.
    assert data_type_differences == {
        "Extension.valueMeta missing", "ElementDefinition.defaultValueMeta missing",
        "ElementDefinition.fixedMeta missing", "ElementDefinition.patternMeta missing",
        "ElementDefinition.example.valueMeta missing"}
    assert r4b_model_types() == set(resource_types()) - no_model - own_differences
