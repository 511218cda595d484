"""Slicing: which slice of a sliced element a value belongs to (hl7.org/fhir/R4/profiling.html#slicing).

A value belongs to the first slice whose every discriminator it satisfies. Discriminator paths
are element names joined by dots, or `$this`. Supported types:

- `value` / `pattern`: the value found at the path equals the slice's `fixed[x]` or matches its
  `pattern[x]` there (for extensions, the `url` fixed by the slice's extension profile);
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
    target = _element_at(slice_node, code, steps)
    if target is None:
        return False
    found = _values_at(value, code, steps)
    if kind in ("value", "pattern"):
        rules = fixed_and_pattern(target.element)
        return bool(rules) and any(all(conforms(v, k, e) for k, e in rules) for v, _ in found)
    if kind == "exists":
        return bool(found) == (target.min > 0)
    if kind == "type":
        allowed = {type_code(t["code"]) for t in target.types}
        return bool(found) and all(c in allowed for _, c in found)
    return False


def _element_at(node: ElementNode, code: str, steps: list[str]) -> ElementNode | None:
    for step in steps:
        if "(" in step:
            return None
        child = node.child_nodes(code).get(step)
        if child is None:
            return None
        node = child
        code = type_code(node.types[0]["code"]) if len(node.types) == 1 else ""
    return node


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
