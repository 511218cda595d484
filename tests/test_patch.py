"""Tests of fhir_server.patch: JSON Patch and FHIRPath Patch as pure functions on resource JSON.

The FHIRPath Patch table ports, from XML to JSON, the 33 cases of the official R4 test file
(FHIR/fhir-test-cases, r4/patch/fhir-patch-tests.xml) and the 2 cases the R5 file adds that hold in
R4 too (a choice element and an extension given as parts). The JSON Patch table ports
r4/patch/json-patch-tests.json (the RFC 6902 appendix examples). Everything else is this
server's own behaviour: error kinds and messages, primitive extensions, choice elements, paths.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_server.patch import PatchError, apply_fhirpath_patch, apply_json_patch

EXAMPLES = Path(__file__).parent / "data" / "r4-examples.ndjson.gz"
OWN_PREFIX = "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix"


def op(kind: str, path: str, *, name: str | None = None, value: dict | None = None, **numbers: int) -> dict:
    """One FHIRPath Patch `operation` parameter; `value` is the content of the value part."""
    parts: list[dict[str, Any]] = [
        {"name": "type", "valueCode": kind},
        {"name": "path", "valueString": path},
    ]
    if name is not None:
        parts.append({"name": "name", "valueString": name})
    if value is not None:
        parts.append({"name": "value", **value})
    parts += [{"name": part, "valueInteger": number} for part, number in numbers.items()]
    return {"name": "operation", "part": parts}


def parameters(*operations: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def patient(**elements: Any) -> dict:
    return {"resourceType": "Patient", **elements}


def identifiers(*numbers: int) -> list[dict]:
    return [{"system": "http://example.org", "value": f"value {number}"} for number in numbers]


def list_case(name: str, before: tuple[int, ...], operations: list[dict], after: tuple[int, ...]) -> Any:
    """An official case on a list of identifiers, numbered as in the official file."""
    return pytest.param(
        patient(identifier=identifiers(*before)), operations, patient(identifier=identifiers(*after)), id=name
    )


def move(source: int, destination: int) -> dict:
    return op("move", "Patient.identifier", source=source, destination=destination)


def identifier(number: int) -> dict:
    return {"valueIdentifier": identifiers(number)[0]}


class Error(NamedTuple):
    """An expected "processing" PatchError and its message."""

    message: str


def patched(resource: dict, *operations: dict) -> dict:
    """Apply a FHIRPath Patch, checking on the way that its inputs are left as they were."""
    before, document = copy.deepcopy(resource), parameters(*operations)
    document_before = copy.deepcopy(document)
    result = apply_fhirpath_patch(resource, document)
    assert (resource, document) == (before, document_before)
    return result


def patch_error(resource: dict, document: object, kind: str) -> PatchError:
    before = copy.deepcopy(resource)
    with pytest.raises(PatchError) as caught:
        apply_fhirpath_patch(resource, document)
    assert resource == before
    assert caught.value.kind == kind, caught.value
    return caught.value


def example(resource_type: str, resource_id: str) -> dict:
    with gzip.open(EXAMPLES, "rt", encoding="utf-8") as lines:
        for line in lines:
            resource = json.loads(line)
            if resource["resourceType"] == resource_type and resource.get("id") == resource_id:
                return resource
    raise LookupError(f"{resource_type}/{resource_id}")


CONTACT = {"name": {"text": "a name"}, "gender": "male"}
TIME = "2021-08-18T11:32:55.6462761+02:00"
DEVICE_EXTENSION = {
    "url": "http://example.org/fhir/DeviceExtension",
    "valueReference": {"reference": "Device/1"},
}
DEVICE_EXTENSION_PART = {
    "name": "extension",
    "part": [
        {"name": "url", "valueUri": DEVICE_EXTENSION["url"]},
        {"name": "value", "valueReference": DEVICE_EXTENSION["valueReference"]},
    ],
}


def specimen(**elements: Any) -> dict:
    return {"resourceType": "Specimen", "status": "available", **elements}


def processing_parts(description: str, time: str) -> list[dict]:
    return [{"name": "description", "valueString": description}, {"name": "time", "valueDateTime": time}]


OFFICIAL_CASES = [
    pytest.param(patient(birthDate="1920-01-01"), [], patient(birthDate="1920-01-01"), id="No Difference"),
    pytest.param(
        patient(birthDate="1920-01-01"),
        [op("replace", "Patient.birthDate", value={"valueDate": "1930-01-01"})],
        patient(birthDate="1930-01-01"),
        id="Replace Primitive",
    ),
    pytest.param(
        patient(birthDate="1920-01-01"), [op("delete", "Patient.birthDate")], patient(), id="Delete Primitive"
    ),
    pytest.param(
        patient(),
        [op("add", "Patient", name="birthDate", value={"valueDate": "1930-01-01"})],
        patient(birthDate="1930-01-01"),
        id="Add Primitive",
    ),
    pytest.param(
        patient(birthDate="1920-01-01"),
        [op("delete", "Patient.birthDate")],
        patient(),
        id="Delete Primitive #2",
    ),
    pytest.param(
        patient(contact=[CONTACT]),
        [op("replace", "Patient.contact[0].gender", value={"valueCode": "female"})],
        patient(contact=[{"name": {"text": "a name"}, "gender": "female"}]),
        id="Replace Nested Primitive #1",
    ),
    pytest.param(
        patient(contact=[CONTACT]),
        [op("replace", "Patient.contact[0].name.text", value={"valueString": "the name"})],
        patient(contact=[{"name": {"text": "the name"}, "gender": "male"}]),
        id="Replace Nested Primitive #2",
    ),
    pytest.param(
        patient(contact=[CONTACT]),
        [op("delete", "Patient.contact[0].gender")],
        patient(contact=[{"name": {"text": "a name"}}]),
        id="Delete Nested Primitive #1",
    ),
    pytest.param(
        patient(contact=[CONTACT]),
        [op("delete", "Patient.contact[0].name.text")],
        patient(contact=[{"gender": "male"}]),
        id="Delete Nested Primitive #2",
    ),
    pytest.param(
        patient(contact=[{"name": {"text": "a name"}}]),
        [op("add", "Patient.contact[0]", name="gender", value={"valueCode": "male"})],
        patient(contact=[CONTACT]),
        id="Add Nested Primitive",
    ),
    pytest.param(
        patient(),
        [op("add", "Patient", name="maritalStatus", value={"valueCodeableConcept": {"text": "married"}})],
        patient(maritalStatus={"text": "married"}),
        id="Add Complex",
    ),
    pytest.param(
        patient(maritalStatus={"id": "1", "text": "married"}),
        [
            op(
                "replace",
                "Patient.maritalStatus",
                value={"valueCodeableConcept": {"id": "2", "text": "not married"}},
            )
        ],
        patient(maritalStatus={"id": "2", "text": "not married"}),
        id="Replace Complex",
    ),
    pytest.param(
        patient(maritalStatus={"text": "married"}),
        [op("delete", "Patient.maritalStatus")],
        patient(),
        id="Delete Complex",
    ),
    pytest.param(
        patient(),
        [
            op(
                "add",
                "Patient",
                name="contact",
                value={"part": [{"name": "name", "valueHumanName": {"text": "a name"}}]},
            )
        ],
        patient(contact=[{"name": {"text": "a name"}}]),
        id="Add Anonymous Type",
    ),
    pytest.param(
        patient(contact=[{"name": {"text": "a name"}}]),
        [op("delete", "Patient.contact[0]")],
        patient(),
        id="Delete Anonymous Type",
    ),
    list_case("List unchanged", (1, 2), [], (1, 2)),
    pytest.param(
        patient(identifier=[{"id": "a", **identifiers(1)[0]}, {"id": "b", **identifiers(2)[0]}]),
        [
            op("replace", "Patient.identifier[0].value", value={"valueString": "value 2"}),
            op("replace", "Patient.identifier[1].value", value={"valueString": "value 1"}),
        ],
        patient(identifier=[{"id": "a", **identifiers(2)[0]}, {"id": "b", **identifiers(1)[0]}]),
        id="List unchanged, contents changed",
    ),
    list_case(
        "Add to list", (1, 2), [op("add", "Patient", name="identifier", value=identifier(3))], (1, 2, 3)
    ),
    list_case(
        "Insert in list #1",
        (1, 2),
        [op("insert", "Patient.identifier", index=1, value=identifier(3))],
        (1, 3, 2),
    ),
    list_case(
        "Insert in list #2",
        (1, 2),
        [op("insert", "Patient.identifier", index=0, value=identifier(3))],
        (3, 1, 2),
    ),
    list_case("Delete from List #1", (1, 2, 3), [op("delete", "Patient.identifier[0]")], (2, 3)),
    list_case("Delete from List #2", (1, 2, 3), [op("delete", "Patient.identifier[1]")], (1, 3)),
    list_case("Delete from List #3", (1, 2, 3), [op("delete", "Patient.identifier[2]")], (1, 2)),
    list_case("Reorder List #1", (1, 2, 3, 4), [move(3, 1)], (1, 4, 2, 3)),
    list_case("Reorder List #2", (1, 2, 3, 4), [move(3, 0)], (4, 1, 2, 3)),
    list_case("Reorder List #3", (1, 2, 3, 4), [move(3, 2)], (1, 2, 4, 3)),
    list_case("Reorder List #4", (1, 2, 3, 4), [move(0, 3)], (2, 3, 4, 1)),
    list_case("Reorder List #5", (1, 2, 3, 4), [move(1, 0), move(2, 1)], (2, 3, 1, 4)),
    list_case("Reorder List #6", (1, 2, 3, 4), [move(3, 0), move(3, 1), move(3, 2)], (4, 3, 2, 1)),
    pytest.param(
        patient(identifier=[{"use": "official", "value": "123"}]),
        [
            op(
                "add",
                "Patient.identifier.where(use = 'official').period",
                name="end",
                value={"valueDate": "2021-12-01"},
            )
        ],
        Error("No content found at Patient.identifier.where(use = 'official').period when adding"),
        id="Operation on missing element",
    ),
    pytest.param(
        patient(),
        [op("add", "Patient", name="identifier", value=identifier(3))],
        patient(identifier=identifiers(3)),
        id="Operation on missing element #2",
    ),
    pytest.param(
        patient(
            id="example",
            contact=[
                {
                    "name": {
                        "family": "du Marché",
                        "_family": {"extension": [{"url": OWN_PREFIX, "valueString": "WW"}]},
                        "given": ["Bénédicte"],
                    }
                }
            ],
        ),
        [
            op("add", "Patient.contact[0]", name="gender", value={"valueCode": "male"}),
            op("add", "Patient", name="contact", value={"part": [{"name": "gender", "valueCode": "male"}]}),
        ],
        patient(
            id="example",
            contact=[
                {
                    "name": {
                        "family": "du Marché",
                        "_family": {"extension": [{"url": OWN_PREFIX, "valueString": "WW"}]},
                        "given": ["Bénédicte"],
                    },
                    "gender": "male",
                },
                {"gender": "male"},
            ],
        ),
        id="Consecutive operations",
    ),
    # The two cases below come from the R5 file; Specimen.processing.time[x] is the same in R4.
    pytest.param(
        specimen(),
        [op("add", "Specimen", name="processing", value={"part": processing_parts("testProcessing", TIME)})],
        specimen(processing=[{"description": "testProcessing", "timeDateTime": TIME}]),
        id="R5: Add with choice element",
    ),
    pytest.param(
        specimen(),
        [
            op(
                "add",
                "Specimen",
                name="processing",
                value={"part": [*processing_parts("test", TIME), DEVICE_EXTENSION_PART]},
            )
        ],
        specimen(processing=[{"extension": [DEVICE_EXTENSION], "description": "test", "timeDateTime": TIME}]),
        id="R5: Add extension",
    ),
]


@pytest.mark.parametrize(("resource", "operations", "expected"), OFFICIAL_CASES)
def test_official_fhirpath_patch_cases(
    resource: dict, operations: list[dict], expected: dict | Error
) -> None:
    if isinstance(expected, Error):
        assert patch_error(resource, parameters(*operations), "processing").message == expected.message
    else:
        assert patched(resource, *operations) == expected


def test_official_full_resource_case() -> None:
    """ "Full Resource": the official case's operations on the official Patient example."""
    resource = example("Patient", "example")
    new_div = resource["text"]["div"].replace("<b>Chalmers</b>", "<b>Chalmers1</b>")
    result = patched(
        resource,
        op("replace", "Patient.text.div", value={"valueString": new_div}),
        op("replace", "Patient.name[0].family", value={"valueString": "Chalmers1"}),
    )
    expected = copy.deepcopy(resource)
    expected["text"]["div"] = new_div
    expected["name"][0]["family"] = "Chalmers1"
    assert result == expected


# --- paths ---------------------------------------------------------------------------------------

NAMES = patient(
    name=[
        {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
        {"use": "usual", "given": ["Jim"]},
    ]
)


@pytest.mark.parametrize(
    ("path", "expected_names"),
    [
        pytest.param(
            "Patient.name.where(use = 'usual').given",
            [NAMES["name"][0], {"use": "usual", "given": ["Jimmy"]}],
            id="where",
        ),
        pytest.param(
            "Patient.name.first().family",
            [{"use": "official", "family": "Jimmy", "given": ["Peter", "James"]}, NAMES["name"][1]],
            id="first",
        ),
        pytest.param(
            "Patient.name[0].given[1]",
            [{"use": "official", "family": "Chalmers", "given": ["Peter", "Jimmy"]}, NAMES["name"][1]],
            id="indexers",
        ),
        pytest.param(
            "name.last().given",
            [NAMES["name"][0], {"use": "usual", "given": ["Jimmy"]}],
            id="no resource type",
        ),
        pytest.param(
            "%resource.name[1].given",
            [NAMES["name"][0], {"use": "usual", "given": ["Jimmy"]}],
            id="%resource",
        ),
    ],
)
def test_paths_select_the_element_to_replace(path: str, expected_names: list[dict]) -> None:
    result = patched(NAMES, op("replace", path, value={"valueString": "Jimmy"}))
    assert result == patient(name=expected_names)


EXTENDED = patient(
    extension=[
        {"url": "http://example.org/a", "valueString": "A"},
        {"url": "http://example.org/b", "valueCodeableConcept": {"text": "B"}},
    ]
)


def test_extension_function_selects_a_primitive_below_it() -> None:
    result = patched(
        EXTENDED, op("replace", "Patient.extension('http://example.org/a').value", value={"valueString": "Z"})
    )
    assert result["extension"][0] == {"url": "http://example.org/a", "valueString": "Z"}


def test_extension_function_selects_an_extension_to_delete() -> None:
    result = patched(EXTENDED, op("delete", "Patient.extension('http://example.org/b')"))
    assert result == patient(extension=[EXTENDED["extension"][0]])


def test_delete_of_nothing_changes_nothing() -> None:
    assert patched(EXTENDED, op("delete", "Patient.extension('http://example.org/none')")) == EXTENDED


def test_contained_resources_can_be_patched() -> None:
    resource = patient(contained=[{"resourceType": "Observation", "id": "o", "status": "final"}])
    result = patched(resource, op("replace", "Patient.contained[0].status", value={"valueCode": "amended"}))
    assert result["contained"][0]["status"] == "amended"


def test_elements_defined_elsewhere_follow_their_definition() -> None:
    """Questionnaire.item.item is defined as Questionnaire.item (contentReference)."""
    resource = {
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [{"linkId": "1", "type": "group"}],
    }
    result = patched(
        resource,
        op(
            "add",
            "Questionnaire.item[0]",
            name="item",
            value={
                "part": [{"name": "linkId", "valueString": "1.1"}, {"name": "type", "valueCode": "string"}]
            },
        ),
    )
    assert result["item"][0]["item"] == [{"linkId": "1.1", "type": "string"}]


def test_an_element_of_every_official_example_can_be_replaced() -> None:
    with gzip.open(EXAMPLES, "rt", encoding="utf-8") as lines:
        resources = [json.loads(line) for line in lines]
    narrated = [resource for resource in resources if "text" in resource]
    assert len(narrated) > 500
    for resource in narrated:
        path = f"{resource['resourceType']}.text.status"
        result = apply_fhirpath_patch(resource, parameters(op("replace", path, value={"valueCode": "empty"})))
        assert result == {**resource, "text": {**resource["text"], "status": "empty"}}, resource.get("id")


# --- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        pytest.param("active", {"valueBoolean": True}, {"active": True}, id="boolean stays a JSON boolean"),
        pytest.param(
            "multipleBirth",
            {"valueInteger": 2},
            {"multipleBirthInteger": 2},
            id="integer into a choice element",
        ),
        pytest.param(
            "deceasedBoolean", {"valueBoolean": False}, {"deceasedBoolean": False}, id="choice by full name"
        ),
        pytest.param(
            "identifier",
            {"part": [{"name": "system", "valueUri": "urn:x"}, {"name": "value", "valueString": "1"}]},
            {"identifier": [{"system": "urn:x", "value": "1"}]},
            id="Identifier given as parts",
        ),
        pytest.param(
            "name",
            {
                "part": [
                    {"name": "family", "valueString": "Doe"},
                    {"name": "given", "valueString": "Jane"},
                    {"name": "given", "valueString": "Ann"},
                ]
            },
            {"name": [{"family": "Doe", "given": ["Jane", "Ann"]}]},
            id="HumanName given as parts, repeated parts make a list",
        ),
        pytest.param(
            "maritalStatus",
            {"valueCodeableConcept": {"text": "M"}},
            {"maritalStatus": {"text": "M"}},
            id="CodeableConcept",
        ),
        pytest.param(
            "contained",
            {"resource": {"resourceType": "Organization", "id": "o"}},
            {"contained": [{"resourceType": "Organization", "id": "o"}]},
            id="resource",
        ),
        pytest.param(
            "gender",
            {"valueCode": "other", "_valueCode": {"extension": [{"url": "urn:e", "valueString": "x"}]}},
            {"gender": "other", "_gender": {"extension": [{"url": "urn:e", "valueString": "x"}]}},
            id="primitive with its own extensions",
        ),
    ],
)
def test_add_turns_values_into_element_json(name: str, value: dict, expected: dict) -> None:
    assert patched(patient(), op("add", "Patient", name=name, value=value)) == patient(**expected)


def test_replace_of_a_choice_element_may_change_its_type() -> None:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "c"},
        "valueQuantity": {"value": 1},
    }
    result = patched(resource, op("replace", "Observation.value", value={"valueString": "high"}))
    assert result == {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "c"},
        "valueString": "high",
    }


def test_the_result_shares_nothing_with_the_patch_document() -> None:
    document = parameters(op("add", "Patient", name="name", value={"valueHumanName": {"given": ["a"]}}))
    result = apply_fhirpath_patch(patient(), document)
    result["name"][0]["given"].append("b")
    assert document["parameter"][0]["part"][3]["valueHumanName"] == {"given": ["a"]}


def test_insert_into_an_empty_list() -> None:
    assert patched(patient(), op("insert", "Patient.identifier", index=0, value=identifier(1))) == patient(
        identifier=identifiers(1)
    )


# --- primitive extensions ------------------------------------------------------------------------

BIRTH_TIME = {
    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
    "valueDateTime": "1974-12-25T14:35",
}
GIVEN_EXTENSION = {"extension": [{"url": "urn:e", "valueString": "x"}]}


def test_add_an_extension_to_a_primitive() -> None:
    result = patched(
        patient(birthDate="1974-12-25"),
        op("add", "Patient.birthDate", name="extension", value={"part": _extension_parts(BIRTH_TIME)}),
    )
    assert result == patient(birthDate="1974-12-25", _birthDate={"extension": [BIRTH_TIME]})


def _extension_parts(extension: dict) -> list[dict]:
    return [
        {"name": "url", "valueUri": extension["url"]},
        {"name": "value", "valueDateTime": extension["valueDateTime"]},
    ]


def test_delete_the_last_extension_of_a_primitive_keeps_its_value() -> None:
    resource = patient(birthDate="1974-12-25", _birthDate={"extension": [BIRTH_TIME]})
    assert patched(resource, op("delete", "Patient.birthDate.extension")) == patient(birthDate="1974-12-25")


def test_delete_a_primitive_deletes_its_extensions() -> None:
    resource = patient(birthDate="1974-12-25", _birthDate={"extension": [BIRTH_TIME]})
    assert patched(resource, op("delete", "Patient.birthDate")) == patient()


def test_list_edits_keep_primitive_extensions_aligned() -> None:
    resource = patient(name=[{"given": ["a", "b"], "_given": [None, GIVEN_EXTENSION]}])
    inserted = patched(resource, op("insert", "Patient.name[0].given", index=0, value={"valueString": "z"}))
    assert inserted["name"][0] == {"given": ["z", "a", "b"], "_given": [None, None, GIVEN_EXTENSION]}
    moved = patched(resource, op("move", "Patient.name[0].given", source=1, destination=0))
    assert moved["name"][0] == {"given": ["b", "a"], "_given": [GIVEN_EXTENSION, None]}
    deleted = patched(resource, op("delete", "Patient.name[0].given[1]"))
    assert deleted["name"][0] == {"given": ["a"]}


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message", "expression"),
    [
        pytest.param([], "must be a Parameters resource", "Parameters", id="not a resource"),
        pytest.param(patient(), "must be a Parameters resource", "Parameters", id="wrong resourceType"),
        pytest.param(
            {"resourceType": "Parameters", "parameter": [{"name": "op", "part": []}]},
            "named 'operation'",
            "Parameters.parameter[0]",
            id="wrong parameter name",
        ),
        pytest.param(
            parameters({"name": "operation", "part": [{"name": "path", "valueString": "Patient"}]}),
            "no 'type' part",
            "Parameters.parameter[0]",
            id="missing type",
        ),
        pytest.param(
            parameters(op("upsert", "Patient")),
            "Unknown operation type 'upsert'",
            "Parameters.parameter[0]",
            id="unknown type",
        ),
        pytest.param(
            parameters({"name": "operation", "part": [{"name": "type", "valueCode": "delete"}]}),
            "needs a 'path' part",
            "Parameters.parameter[0]",
            id="missing path",
        ),
        pytest.param(
            parameters(op("delete", "Patient.gender"), op("replace", "Patient.gender")),
            "needs a 'value' part",
            "Parameters.parameter[1]",
            id="missing value",
        ),
        pytest.param(
            parameters(op("delete", "Patient.gender", index=0)),
            "takes no 'index' part",
            "Parameters.parameter[0]",
            id="part the type does not take",
        ),
        pytest.param(
            parameters(
                {"name": "operation", "part": [{"name": "type", "valueCode": "delete"}, {"name": "where"}]}
            ),
            "Unknown part 'where'",
            "Parameters.parameter[0]",
            id="unknown part",
        ),
        pytest.param(
            parameters(op("delete", "Patient.name.where(use = 'x'")),
            "Invalid FHIRPath",
            "Parameters.parameter[0].part[1]",
            id="FHIRPath syntax",
        ),
        pytest.param(
            parameters(op("insert", "Patient.name", index=-1, value={"valueHumanName": {}})),
            "must not be negative",
            "Parameters.parameter[0].part[3]",
            id="negative index",
        ),
        pytest.param(
            parameters(op("replace", "Patient.gender", value={"valueCode": "male", "valueString": "male"})),
            "exactly one of value[x], resource or part",
            "Parameters.parameter[0].part[2]",
            id="two values",
        ),
        pytest.param(
            parameters(op("replace", "Patient.gender", value={"valueFoo": "male"})),
            "valueFoo: not a FHIR data type",
            "Parameters.parameter[0].part[2]",
            id="unknown value type",
        ),
        pytest.param(
            parameters(op("replace", "Patient.active", value={"valueBoolean": "true"})),
            "wrong kind",
            "Parameters.parameter[0].part[2]",
            id="value of the wrong JSON kind",
        ),
        pytest.param(
            parameters(op("add", "Patient", name="contact", value={"part": [{"valueCode": "male"}]})),
            "Every part needs a name",
            "Parameters.parameter[0].part[3].part[0]",
            id="nested part without name",
        ),
    ],
)
def test_malformed_documents_are_invalid(document: object, message: str, expression: str) -> None:
    error = patch_error(patient(gender="male"), document, "invalid")
    assert message in error.message
    assert error.expression == expression


def test_a_malformed_operation_is_found_before_any_is_applied() -> None:
    document = parameters(op("delete", "Patient.gender"), op("move", "Patient.name", source=0))
    assert patch_error(patient(gender="male"), document, "invalid").expression == "Parameters.parameter[1]"


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        pytest.param(
            op("replace", "Patient.birthDate", value={"valueDate": "2000"}),
            "No content found at Patient.birthDate when replacing",
            id="replace nothing",
        ),
        pytest.param(
            op("replace", "Patient.name.given", value={"valueString": "x"}),
            "Patient.name.given selects 3 elements; replace needs exactly one",
            id="replace many",
        ),
        pytest.param(
            op("delete", "Patient.name"),
            "Patient.name selects 2 elements; delete removes only one",
            id="delete many",
        ),
        pytest.param(
            op("add", "Patient.name", name="text", value={"valueString": "x"}),
            "Patient.name selects 2 elements; add needs exactly one",
            id="add to many",
        ),
        pytest.param(
            op("insert", "Patient.name", index=3, value={"valueHumanName": {}}),
            "index 3 is out of range: Patient.name has 2 elements",
            id="insert out of range",
        ),
        pytest.param(
            op("move", "Patient.name", source=2, destination=0),
            "source 2 is out of range: Patient.name has 2 elements",
            id="move source out of range",
        ),
        pytest.param(
            op("move", "Patient.name", source=0, destination=2),
            "destination 2 is out of range: Patient.name has 2 elements",
            id="move destination out of range",
        ),
        pytest.param(
            op("move", "Patient.identifier", source=0, destination=0),
            "No content found at Patient.identifier when moving",
            id="move in an empty list",
        ),
        pytest.param(
            op("insert", "Patient.gender", index=0, value={"valueCode": "male"}),
            "Patient.gender does not select a list",
            id="insert into a single element",
        ),
        pytest.param(
            op("insert", "Patient.name.given", index=0, value={"valueString": "x"}),
            "Patient.name.given must select all the items of one list",
            id="insert into two lists",
        ),
        pytest.param(
            op("add", "Patient", name="nickname", value={"valueString": "x"}),
            "Patient has no element 'nickname'",
            id="add an unknown element",
        ),
        pytest.param(
            op("add", "Patient", name="gender", value={"valueCode": "female"}),
            "Patient.gender does not repeat and already has a value: use replace",
            id="add a single element twice",
        ),
        pytest.param(
            op("add", "Patient", name="deceased", value={"valueBoolean": True}),
            "Patient.deceased[x] does not repeat and already has a value: use replace",
            id="add a choice element present with another type",
        ),
        pytest.param(
            op("add", "Patient", name="deceasedBoolean", value={"valueDateTime": "2020"}),
            "'deceasedBoolean' holds values of type boolean, not dateTime",
            id="choice name and value type disagree",
        ),
        pytest.param(
            op("add", "Patient", name="multipleBirth", value={"valueString": "twins"}),
            "Patient.multipleBirth[x] cannot hold a value of type string",
            id="type not allowed in a choice element",
        ),
        pytest.param(
            op("replace", "Patient.name[0]", value={"valueString": "Jim"}),
            "Patient.name cannot hold a value of type string",
            id="primitive for a complex element",
        ),
        pytest.param(
            op("add", "Patient", name="birthDate", value={"part": [{"name": "id", "valueString": "x"}]}),
            "Patient.birthDate takes a typed value (value[x] or resource), not parts",
            id="parts for a primitive",
        ),
        pytest.param(
            op("add", "Patient", name="contained", value={"valueString": "x"}),
            "Patient.contained cannot hold a value of type string",
            id="non-resource for a resource element",
        ),
        pytest.param(
            op("delete", "Patient"),
            "delete cannot be applied to the resource itself",
            id="delete the resource",
        ),
        pytest.param(
            op("replace", "Patient.name.count()", value={"valueInteger": 1}),
            "Patient.name.count() selects something that is not an element of the resource",
            id="computed value",
        ),
        pytest.param(
            op("delete", "Patient.resourceType"),
            "Patient.resourceType selects something that is not an element of the resource",
            id="resourceType",
        ),
        pytest.param(
            op("delete", "Patient.managingOrganization.resolve()"),
            "Cannot evaluate Patient.managingOrganization.resolve()",
            id="resolve is not supported",
        ),
    ],
)
def test_operations_that_do_not_fit_the_resource_cannot_be_processed(operation: dict, message: str) -> None:
    resource = patient(
        gender="male",
        deceasedDateTime="2020",
        name=[{"given": ["a", "b"]}, {"given": ["c"]}],
        managingOrganization={"reference": "Organization/1"},
    )
    document = parameters(op("add", "Patient", name="active", value={"valueBoolean": True}), operation)
    error = patch_error(resource, document, "processing")
    assert error.message.startswith(message), error.message
    assert error.expression == "Parameters.parameter[1]"


@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda size: st.tuples(st.just(size), st.integers(0, size - 1), st.integers(0, size - 1))
    )
)
def test_a_move_and_its_inverse_restore_the_list(case: tuple[int, int, int]) -> None:
    size, source, destination = case
    resource = patient(identifier=identifiers(*range(size)))
    result = patched(
        resource,
        op("move", "Patient.identifier", source=source, destination=destination),
        op("move", "Patient.identifier", source=destination, destination=source),
    )
    assert result == resource


# --- JSON Patch ----------------------------------------------------------------------------------

JSON_PATCH_CASES = [
    pytest.param(
        {"q": {"bar": 2}},
        [{"op": "add", "path": "/a/b", "value": 1}],
        None,
        id="4.1. add with missing object",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
        id="A.1. Adding an Object Member",
    ),
    pytest.param(
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
        id="A.2. Adding an Array Element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
        id="A.3. Removing an Object Member",
    ),
    pytest.param(
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
        id="A.4. Removing an Array Element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
        id="A.5. Replacing a Value",
    ),
    pytest.param(
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        id="A.6. Moving a Value",
    ),
    pytest.param(
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
        id="A.7. Moving an Array Element",
    ),
    pytest.param(
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
        id="A.8. Testing a Value: Success",
    ),
    pytest.param(
        {"baz": "qux"},
        [{"op": "test", "path": "/baz", "value": "bar"}],
        None,
        id="A.9. Testing a Value: Error",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
        id="A.10. Adding a nested Member Object",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
        id="A.11. Ignoring Unrecognized Elements",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
        None,
        id="A.12. Adding to a Non-existent Target",
    ),
    pytest.param(
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}],
        {"/": 9, "~1": 10},
        id="A.14. Escape Ordering",
    ),
    pytest.param(
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": "10"}],
        None,
        id="A.15. Comparing Strings and Numbers",
    ),
    pytest.param(
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
        id="A.16. Adding an Array Value",
    ),
]


@pytest.mark.parametrize(("document", "operations", "expected"), JSON_PATCH_CASES)
def test_official_json_patch_cases(document: dict, operations: list[dict], expected: dict | None) -> None:
    """The official documents are not resources: they are given a resourceType to be patched."""
    resource = {"resourceType": "Basic", **document}
    before = copy.deepcopy(resource)
    if expected is None:
        with pytest.raises(PatchError) as caught:
            apply_json_patch(resource, operations)
        assert caught.value.kind == "processing"
    else:
        assert apply_json_patch(resource, operations) == {"resourceType": "Basic", **expected}
    assert resource == before


@pytest.mark.parametrize(
    ("operations", "kind", "expression"),
    [
        pytest.param({"op": "remove", "path": "/active"}, "invalid", None, id="not an array"),
        pytest.param([5], "invalid", "/0", id="operation not an object"),
        pytest.param([{"path": "/active"}], "invalid", "/0", id="no op"),
        pytest.param([{"op": "append", "path": "/active", "value": 1}], "invalid", "/0", id="unknown op"),
        pytest.param([{"op": "remove", "path": "active"}], "invalid", "/0", id="path not a JSON Pointer"),
        pytest.param(
            [{"op": "test", "path": "/active", "value": True}, {"op": "add", "path": "/gender"}],
            "invalid",
            "/1",
            id="no value",
        ),
        pytest.param([{"op": "move", "path": "/gender"}], "invalid", "/0", id="move without from"),
        pytest.param(
            [{"op": "copy", "from": "active", "path": "/x"}], "invalid", "/0", id="from not a JSON Pointer"
        ),
        pytest.param(
            [{"op": "test", "path": "/active", "value": False}], "processing", "/0", id="failed test"
        ),
        pytest.param([{"op": "remove", "path": "/gender"}], "processing", "/0", id="remove missing"),
        pytest.param(
            [{"op": "replace", "path": "/name/3", "value": {}}], "processing", "/0", id="index out of range"
        ),
        pytest.param(
            [{"op": "replace", "path": "/resourceType", "value": "Group"}],
            "processing",
            None,
            id="type changed",
        ),
        pytest.param(
            [{"op": "replace", "path": "", "value": []}], "processing", None, id="no longer an object"
        ),
    ],
)
def test_json_patch_errors(operations: object, kind: str, expression: str | None) -> None:
    resource = patient(active=True, name=[{"family": "x"}])
    with pytest.raises(PatchError) as caught:
        apply_json_patch(resource, operations)
    assert (caught.value.kind, caught.value.expression) == (kind, expression), caught.value
    assert resource == patient(active=True, name=[{"family": "x"}])


def test_json_patch_on_a_resource() -> None:
    resource = patient(active=True, name=[{"family": "x"}])
    result = apply_json_patch(
        resource,
        [
            {"op": "test", "path": "/active", "value": True},
            {"op": "replace", "path": "/active", "value": False},
            {"op": "add", "path": "/name/0/given", "value": ["a"]},
            {"op": "copy", "from": "/name/0", "path": "/name/-"},
        ],
    )
    assert result == patient(
        active=False, name=[{"family": "x", "given": ["a"]}, {"family": "x", "given": ["a"]}]
    )
    assert result["name"][0] is not result["name"][1]
