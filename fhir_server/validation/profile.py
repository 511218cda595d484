"""The profile validator: a resource checked against a StructureDefinition snapshot.

Owns `validate_profile(resource, url)`, which walks the resource along the compiled snapshot
(`profile_definitions`) and reports every violation once, each with the FHIRPath location of the
value at fault (`MedicationRequest.dispenseRequest.validityPeriod`):

- cardinality (min/max of every element and slice);
- types: the type of a choice value, and the resource type a Reference points to (`targetProfile`);
- fixed[x], pattern[x] and maxLength (`profile_values`);
- slicing: slice cardinalities and closed slicing (`slicing`);
- required ValueSet bindings (`profile_values`);
- FHIRPath invariants (`invariants`), those of the profile and of the base definitions it carries,
  including those of every data type and of contained and nested resources.

The resource must be structurally valid R4 (`validate_structure` passed): the walker relies on
the JSON shapes the structure walker checked.
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

from fhir_server.validation import invariants
from fhir_server.validation.issue import Issue
from fhir_server.validation.profile_definitions import (
    Definition,
    ElementNode,
    choice_type,
    definition,
    resource_definition,
    type_code,
)
from fhir_server.validation.profile_values import (
    binding_problem,
    referenced_type,
    target_types,
    value_problem,
)
from fhir_server.validation.slicing import slice_of

Json = dict[str, Any]
# An occurrence of an element: its JSON property name, type code, value and, for primitives,
# the `_name` object holding its id and extensions.
Occurrence = tuple[str, str, Any, Any]
_RESOURCE_TYPES = frozenset({"Resource", "DomainResource"})


def validate_profile(resource: Json, url: str) -> list[Issue]:
    """Every way `resource` does not conform to the StructureDefinition `url`.

    Raises KeyError when `url` names no known StructureDefinition snapshot.
    """
    compiled = definition(url)
    if compiled is None:
        raise KeyError(url)
    return validate_against(resource, compiled)


def validate_against(resource: Json, compiled: Definition) -> list[Issue]:
    """Every way `resource` does not conform to the compiled snapshot `compiled`."""
    url = compiled.url
    resource_type = resource["resourceType"]
    if compiled.type != resource_type:
        return [Issue("error", "invalid", f"{url} is a profile of {compiled.type}, not of {resource_type}",
                      resource_type)]
    walk = _Walk(resource)
    walk.value(resource, None, compiled.root, resource_type, resource_type, resource)
    return list(dict.fromkeys(walk.issues))


class _Walk:
    def __init__(self, root: Json) -> None:
        self.root = root
        self.issues: list[Issue] = []

    def error(self, code: str, diagnostics: str, path: str, severity: str = "error") -> None:
        self.issues.append(Issue(severity, code, diagnostics, path))

    def value(self, value: Any, extensions: Any, node: ElementNode, code: str, path: str, resource: Json) -> None:
        """Check one value of `node` and walk its children."""
        element = node.element
        if problem := value_problem(element, value):
            self.error("value", problem, path)
        if problem := binding_problem(element, code, value):
            self.error("code-invalid", problem, path)
        self.constraints(value, extensions, node, code, path, resource)
        children = extensions if not isinstance(value, dict) else value
        if isinstance(children, dict):
            self.children(children, node.child_nodes(code), path, resource)

    def constraints(self, value: Any, extensions: Any, node: ElementNode, code: str, path: str,
                    resource: Json) -> None:
        type_path = node.fhirpath_type(code)
        for constraint in node.constraints(code):
            key = constraint["key"]
            if key == "ele-1":
                failed = not invariants.has_value_or_children(value, extensions)
            elif key in invariants.UNEVALUATED or "expression" not in constraint:
                continue
            else:
                failed = invariants.violated(constraint, value, type_path, resource, self.root)
            if failed is None:
                self.error("not-supported", f"invariant {key} could not be evaluated", path, "information")
            elif failed:
                self.error("invariant", f"{key}: {constraint.get('human', '')}", path,
                           "warning" if constraint.get("severity") == "warning" else "error")

    def children(self, obj: Json, children: dict[str, ElementNode], path: str, resource: Json) -> None:
        for node in children.values():
            found = _occurrences(obj, node)
            count = len(found)
            if count < node.min:
                name = f"{node.name}[x]" if node.choice else node.name
                self.error("required", f"{node.path}: at least {node.min} required, {count} found", f"{path}.{name}")
            if node.max is not None and count > node.max:
                self.error("structure", f"{node.path}: at most {node.max} allowed, {count} found",
                           f"{path}.{found[0][0]}")
            paths = [f"{path}.{key}[{i}]" if isinstance(obj.get(key, obj.get("_" + key)), list) else f"{path}.{key}"
                     for i, (key, *_) in enumerate(found)]
            for (_, code, value, extensions), item_path in zip(found, paths, strict=True):
                self.occurrence(value, extensions, node, code, item_path, resource)
            if node.slices:
                self.slices(found, paths, node, path, resource)

    def occurrence(self, value: Any, extensions: Any, node: ElementNode, code: str, path: str,
                   resource: Json) -> None:
        if isinstance(value, dict) and "resourceType" in value and (code in _RESOURCE_TYPES or not code):
            self.resource(value, path)
            return
        entry = node.type_entry(code)
        if entry is None and node.types:
            allowed = ", ".join(type_code(t["code"]) for t in node.types)
            self.error("structure", f"type {code} is not allowed here (allowed: {allowed})", path)
            return
        if code == "Reference" and entry and isinstance(value, dict):
            self.reference_target(value, entry, path, resource)
        self.value(value, extensions, node, code, path, resource)

    def resource(self, value: Json, path: str) -> None:
        """A contained or nested resource, checked against its base definition."""
        compiled = resource_definition(value["resourceType"])
        if compiled is not None:
            self.value(value, None, compiled.root, value["resourceType"], path, value)

    def reference_target(self, reference: Json, entry: Json, path: str, resource: Json) -> None:
        allowed = target_types(entry)
        target = referenced_type(reference, resource)
        if allowed is not None and target is not None and target not in allowed:
            self.error("structure", f"the reference must point to {' or '.join(sorted(allowed))}, not {target}",
                       path)

    def slices(self, found: list[Occurrence], paths: list[str], node: ElementNode, path: str,
               resource: Json) -> None:
        counts = {id(s): 0 for s in node.slices}
        closed = node.element.get("slicing", {}).get("rules") == "closed"
        for (_, code, value, extensions), item_path in zip(found, paths, strict=True):
            chosen = slice_of(value, code, node)
            if chosen is None:
                if closed:
                    self.error("structure", f"{node.path}: the value matches no slice and the slicing is closed",
                               item_path)
                continue
            counts[id(chosen)] += 1
            self.value(value, extensions, chosen, code, item_path, resource)
        for slice_node in node.slices:
            count = counts[id(slice_node)]
            name = slice_node.element.get("sliceName")
            if count < slice_node.min:
                self.error("required", f"{node.path}: slice '{name}' requires at least {slice_node.min}, "
                           f"{count} found", f"{path}.{node.name}")
            elif slice_node.max is not None and count > slice_node.max:
                self.error("structure", f"{node.path}: slice '{name}' allows at most {slice_node.max}, "
                           f"{count} found", f"{path}.{node.name}")


def _occurrences(obj: Json, node: ElementNode) -> list[Occurrence]:
    """The values of `node` in `obj`, one per array item."""
    if node.choice:
        keys = list(dict.fromkeys(k for k in (raw.removeprefix("_") for raw in obj) if _is_choice_key(k, node)))
    else:
        keys = [node.name] if node.name in obj or "_" + node.name in obj else []
    found: list[Occurrence] = []
    for key in keys:
        if node.choice:
            code = choice_type(key[len(node.name):])
        else:
            code = type_code(node.types[0]["code"]) if node.types else ""
        values, extensions = obj.get(key), obj.get("_" + key)
        if isinstance(values, list) or isinstance(extensions, list):
            pairs = zip_longest(values or [], extensions or [])
        else:
            pairs = [(values, extensions)]
        found += [(key, code, v, e) for v, e in pairs]
    return found


def _is_choice_key(key: str, node: ElementNode) -> bool:
    """Whether JSON property `key` holds values of choice element `node` (`valueQuantity` of `value[x]`)."""
    return key.startswith(node.name) and key[len(node.name):][:1].isupper()
