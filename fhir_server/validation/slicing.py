"""Slicing: which slice of a sliced element a value belongs to (hl7.org/fhir/R4/profiling.html#slicing).

A value belongs to the first slice whose every discriminator it satisfies. Discriminator paths
are element names joined by dots, or `$this`. Supported types:

- `value` / `pattern`: the value found at the path equals the slice's `fixed[x]` or matches its
  `pattern[x]` there (for extensions, the `url` fixed by the slice's extension profile). When the
  slice fixes nothing at the path itself but the path crosses a sliced element, the values are
  those its required slices fix: the bp profile's `component:SystolicBP` is discriminated on
  `code.coding.code` and fixes it only in the required slice `code.coding:SBPCode`, so a
  component belongs to it when one of its codings has that code;
- `exists`: something is at the path exactly when the slice requires the element there;
- `type`: the type of what is at the path is the slice's type there.

`profile` discriminators and FHIRPath functions in paths (`resolve()`, `extension(url)`) are not
supported: no value belongs to such a slice.
"""

from __future__ import annotations

from typing import Any

from fhir_server.validation.profile_definitions import ElementNode, choice_type, type_code
from fhir_server.validation.profile_values import conforms, fixed_and_pattern

Json = dict[str, Any]


def slice_of(value: Any, code: str, sliced: ElementNode) -> ElementNode | None:
    """The slice of `sliced` that `value` (of type `code`) belongs to, if any."""
    discriminators = sliced.element.get("slicing", {}).get("discriminator", [])
    if not discriminators:
        return None
    return next((s for s in sliced.slices if all(_satisfies(value, code, s, d) for d in discriminators)), None)


def _satisfies(value: Any, code: str, slice_node: ElementNode, discriminator: Json) -> bool:
    kind, path = discriminator.get("type"), discriminator.get("path", "$this")
    steps = [step for step in path.split(".") if step != "$this"]
    found = _values_at(value, code, steps)
    if kind in ("value", "pattern"):
        rule_sets = _required_values(slice_node, code, steps)
        return bool(rule_sets) and all(any(all(conforms(v, k, e) for k, e in rules) for v, _ in found)
                                       for rules in rule_sets)
    target = _element_at(slice_node, code, steps)
    if target is None:
        return False
    if kind == "exists":
        return bool(found) == (target.min > 0)
    if kind == "type":
        allowed = {type_code(t["code"]) for t in target.types}
        return bool(found) and all(c in allowed for _, c in found)
    return False


def _element_at(node: ElementNode, code: str, steps: list[str]) -> ElementNode | None:
    for step in steps:
        child = _child(node, code, step)
        if child is None:
            return None
        node, code = child
    return node


def _child(node: ElementNode, code: str, step: str) -> tuple[ElementNode, str] | None:
    """The child element `step` of a value of type `code` at `node`, with its type code."""
    child = None if "(" in step else node.child_nodes(code).get(step)
    if child is None:
        return None
    return child, type_code(child.types[0]["code"]) if len(child.types) == 1 else ""


def _required_values(node: ElementNode, code: str, steps: list[str]) -> list[list[tuple[str, Any]]]:
    """The fixed/pattern rule sets a value of `node` must meet at `steps`, each met by some value there.

    One set, the element's own, when the element at `steps` fixes a value; otherwise, crossing a
    sliced element, one set per value its required slices fix (each such slice must be present, so
    each of its values must be found).
    """
    if not steps:
        rules = fixed_and_pattern(node.element)
        return [rules] if rules else []
    child = _child(node, code, steps[0])
    if child is None:
        return []
    element, element_code = child
    own = _required_values(element, element_code, steps[1:])
    if own:
        return own
    return [rules for s in element.slices if s.min > 0 for rules in _required_values(s, element_code, steps[1:])]


def _values_at(value: Any, code: str, steps: list[str]) -> list[tuple[Any, str]]:
    """The values at `steps` below `value`, each with its type code."""
    current = [(value, code)]
    for step in steps:
        found = []
        for item, _ in current:
            if not isinstance(item, dict):
                continue
            for key, got in item.items():
                if key == step:
                    item_code = ""
                elif key.startswith(step) and key[len(step):][:1].isupper():
                    item_code = choice_type(key[len(step):])
                else:
                    continue
                found += [(g, item_code) for g in (got if isinstance(got, list) else [got])]
        current = found
    return current
