"""FHIRPath invariants (ElementDefinition.constraint) evaluated with fhirpathpy.

Owns how a constraint is evaluated on one value: the value is the focus (typed with the path of
its element or data type, so choice elements such as `value[x]` resolve), `%resource` is the
resource holding it and `%rootResource` the outermost one. A constraint is violated when its
expression evaluates to `false`; an empty result is not a violation, since FHIRPath comparisons
of values of different precision are empty (hl7.org/fhirpath/#comparison).

Three differences between the R4 invariants and fhirpathpy are bridged rather than skipped:
fhirpathpy lacks `hasValue()` (used by bdl-*, per-1...), supplied here; R4 invariants apply
`as(type)` to collections as a filter (dom-3: `descendants().as(canonical)`), which FHIRPath
defines for single items only and fhirpathpy refuses, so `.as(` is evaluated as `.ofType(`,
which is the same on one item and the intended filter on several; and fhirpathpy orders two
date/dateTime/instant elements (`<`, `<=`, `>`, `>=`: per-1 `start <= end`, mdd-1, inv-1) by
their JSON text, so `...T00:00:00+02:00` came after `...T00:00:00+00:00`, two hours later;
they are compared as FHIRPath DateTimes here (instants, and empty across precisions).

`ele-1` ("All FHIR elements must have a @value or children") applies to every element of every
resource; it is checked here by an equivalent Python test rather than by FHIRPath, which would
dominate the cost of validation. `UNEVALUATED` lists the base R4 invariants fhirpathpy cannot
evaluate, with the reason; they are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.engine.invocations import equality
from fhirpathpy.engine.nodes import FP_DateTime, ResourceNode
from fhirpathpy.models import models

Json = dict[str, Any]
Evaluator = Callable[[Any, dict[str, Any]], list[Any]]

# Keys of base R4 invariants that are not evaluated, and why.
UNEVALUATED: dict[str, str] = {
    "txt-1": "htmlChecks() (the narrative's XHTML subset) is not implemented by fhirpathpy",
    "txt-2": "htmlChecks() (the narrative's XHTML subset) is not implemented by fhirpathpy",
    "ctm-1": "resolve() of references is not implemented by fhirpathpy",
    "rng-2": "fhirpathpy cannot compare Quantity values (`low <= high`)",
    "que-7": "`answer is Boolean` tests a FHIR boolean against the System type, false in fhirpathpy",
}


def _has_value(inputs: list[Any]) -> list[bool]:
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)]


_DATE_TYPES = frozenset({"date", "dateTime", "instant"})


def _as_datetime(item: Any) -> Any:
    if isinstance(item, ResourceNode) and item.path in _DATE_TYPES and isinstance(item.data, str):
        return FP_DateTime(item.data)
    return item


def _ordering(compare: Callable[..., Any]) -> dict[str, Any]:
    """`compare` (fhirpathpy's `<`...) with a date-typed right operand as a FHIRPath DateTime.

    A user invocation receives its left operand already reduced to JSON data (its type lost) and
    its right one as nodes; fhirpathpy converts a string compared with a DateTime into a DateTime,
    so typing the right operand types both.
    """
    def ordered(left: list[Any], right: list[Any]) -> Any:
        return compare(None, left, [_as_datetime(item) for item in right])
    return {"fn": ordered, "arity": {2: ["Any", "Any"]}, "nullable": True}


_OPTIONS = {
    "userInvocationTable": {
        "hasValue": {"fn": _has_value, "arity": {0: []}},
        "<": _ordering(equality.lt), "<=": _ordering(equality.lte),
        ">": _ordering(equality.gt), ">=": _ordering(equality.gte),
    },
    # trace() in base invariants (dom-3) would print to stdout without a trace function.
    "traceFn": lambda *_: None,
}


@cache
def _compiled(expression: str) -> Evaluator | None:
    try:
        return compile_fhirpath(expression.replace(".as(", ".ofType("), models["r4"], _OPTIONS)
    except Exception:  # an expression fhirpathpy cannot parse is reported as not evaluated
        return None


def has_value_or_children(value: Any, extensions: Any) -> bool:
    """ele-1 for a value and, for primitives, its `_name` object: a value, or a child besides `id`."""
    if isinstance(value, dict):
        return any(key != "id" for key in value)
    return value is not None or (isinstance(extensions, dict) and any(key != "id" for key in extensions))


def violated(constraint: Json, value: Any, type_path: str, resource: Json, root: Json) -> bool | None:
    """Whether `value` violates `constraint`; None when the expression cannot be evaluated."""
    evaluate = _compiled(constraint["expression"])
    if evaluate is None:
        return None
    context = {"resource": ResourceNode.create_node(resource, resource["resourceType"]),
               "rootResource": ResourceNode.create_node(root, root["resourceType"])}
    try:
        result = evaluate(ResourceNode.create_node(value, type_path), context)
    except Exception:  # fhirpathpy raises on functions it lacks; never fail the request for it
        return None
    return result == [False]
