"""The value rules of a snapshot element: fixed[x], pattern[x], required bindings, maxLength,
and the target types of references.

Each check takes one JSON value and returns the problem as text, or None when the value
conforms. Required bindings are checked against the expansion of the shipped R4 ValueSets
(`fhir_server.search.valuesets`); a ValueSet that cannot be expanded locally (filters, external
code systems such as SNOMED CT) is not checked.
"""

from __future__ import annotations

from typing import Any

from fhir_server.definitions import resource_types
from fhir_server.search.valuesets import expand
from fhir_server.validation.profile_definitions import structure_definition

Json = dict[str, Any]
_VALUE_PREFIXES = ("fixed", "pattern")


def fixed_and_pattern(element: Json) -> list[tuple[str, Any]]:
    """The `fixed[x]` / `pattern[x]` entries of `element`, as ("fixed" | "pattern", value)."""
    return [(key[:5] if key.startswith("fixed") else key[:7], value)
            for key, value in element.items() if key.startswith(_VALUE_PREFIXES)]


def matches_pattern(value: Any, pattern: Any) -> bool:
    """Whether `value` holds everything `pattern` states (R4 pattern[x] semantics)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(matches_pattern(value.get(k), p) for k, p in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(matches_pattern(v, p) for v in value) for p in pattern)
    return value == pattern


def conforms(value: Any, kind: str, expected: Any) -> bool:
    return value == expected if kind == "fixed" else matches_pattern(value, expected)


def value_problem(element: Json, value: Any) -> str | None:
    """A fixed/pattern/maxLength violation by `value`, if any."""
    for kind, expected in fixed_and_pattern(element):
        if not conforms(value, kind, expected):
            return f"value must {'be' if kind == 'fixed' else 'match'} {kind} value {_short(expected)}"
    max_length = element.get("maxLength")
    if max_length and isinstance(value, str) and len(value) > max_length:
        return f"value is {len(value)} characters long, more than maxLength {max_length}"
    return None


def binding_problem(element: Json, code: str, value: Any) -> str | None:
    """A required-binding violation by `value` (of type `code`), if any."""
    binding = element.get("binding")
    if not binding or binding.get("strength") != "required" or "valueSet" not in binding:
        return None
    codes = expand(binding["valueSet"])
    if codes is None:
        return None
    value_set = binding["valueSet"]
    if code == "CodeableConcept":
        codings = value.get("coding", []) if isinstance(value, dict) else []
        if any(_coding_in(c, codes) for c in codings):
            return None
        return f"no coding is from the required value set {value_set}"
    if code == "Coding":
        if not isinstance(value, dict) or "code" not in value or _coding_in(value, codes):
            return None
        return f"{value.get('system', '')}#{value['code']} is not in the required value set {value_set}"
    if isinstance(value, str) and not any(c == value for _, c in codes):
        return f"'{value}' is not in the required value set {value_set}"
    return None


def _coding_in(coding: Json, codes: frozenset[tuple[str, str]]) -> bool:
    system, code = coding.get("system"), coding.get("code")
    if system is None:
        return any(c == code for _, c in codes)
    return (system, code) in codes


def target_types(type_entry: Json) -> set[str] | None:
    """The resource types a Reference may point to per `targetProfile`; None: any type."""
    types = set()
    for url in type_entry.get("targetProfile", ()):
        sd = structure_definition(url)
        if sd is None or sd["type"] == "Resource":
            return None
        types.add(sd["type"])
    return types or None


def referenced_type(reference: Json, resource: Json) -> str | None:
    """The resource type a Reference points to, when the reference says it."""
    target = reference.get("reference")
    if isinstance(target, str) and not target.startswith("urn:"):
        if target.startswith("#"):
            contained = (r for r in resource.get("contained", ()) if r.get("id") == target[1:])
            return next((r.get("resourceType") for r in contained), None)
        parts = target.split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) >= 2 and parts[-2] in resource_types():
            return parts[-2]
    return reference.get("type")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
