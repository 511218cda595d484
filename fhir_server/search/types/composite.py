"""Composite search parameters: component values kept together per repetition.

Stored as a list of `{"c0": ..., "c1": ...}` elements, one per repetition of the parameter's
expression (an Observation, or each Observation.component), each component value in its own
type's shape. When a component yields several range-shaped values (two quantities, say) the
repetition contributes one element per combination, so every element has one value per
range component. A query `code$value` (components split on unescaped `$`) becomes one
`$elemMatch` over `c0`, `c1`..., so both parts must hold in the same repetition.
"""

from __future__ import annotations

from itertools import product
from typing import Any

from fhir_server.search.errors import SearchError
from fhir_server.search.types import element_match, split_escaped
from fhir_server.search.types.by_name import MODULES, RANGE_TYPES


def index(nodes: list[tuple[str | None, Any]], components: tuple, resource: dict) -> list | None:
    """The composite elements of the repetitions in `nodes` (None when no repetition is complete)."""
    elements = []
    for node in nodes:
        parts: list[list[Any]] = []
        for component in components:
            module = MODULES[component.type]
            values = module.index(component.extract(node, resource), False)
            if values is None:
                break
            parts.append(values if component.type in RANGE_TYPES else [values])
        else:
            elements += [{f"c{i}": v for i, v in enumerate(combo)} for combo in product(*parts)]
    return elements or None


def parse(raw: str, components: tuple) -> list[Any]:
    """One composite query value: a parsed value per component."""
    parts = split_escaped(raw, "$", keep_escapes=True)
    if len(parts) != len(components):
        raise SearchError("", f"composite value needs {len(components)} parts separated by '$', got {raw!r}")
    return [MODULES[c.type].parse(p, None) for c, p in zip(components, parts, strict=True)]


def match(field: str, components: tuple, values: list[list[Any]]) -> dict:
    """Any of `values`, each matching all its components within one stored element."""
    def element(value: list[Any]) -> dict:
        conditions = [MODULES[c.type].match(f"c{i}", True, None, [v])
                      for i, (c, v) in enumerate(zip(components, value, strict=True))]
        return {"$and": conditions}
    return element_match(field, [element(v) for v in values])
