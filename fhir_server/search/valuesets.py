"""Expansion of the shipped R4 ValueSets, for the token modifiers `:in` and `:not-in`.

A ValueSet expands here when every `compose.include` lists its concepts, names a whole
CodeSystem shipped with the server (content `complete`, nested concepts included) or imports
other expandable ValueSets; `exclude` entries are removed. Filters (`is-a`, regex...) and
external code systems (SNOMED CT, LOINC) cannot be expanded locally: `expand` returns None and
the query is refused as unsupported rather than answered wrongly.
"""

from __future__ import annotations

from functools import cache

from fhir_server.definitions import terminology


def _codes(concepts: list[dict]) -> list[str]:
    out = []
    for concept in concepts:
        out.append(concept["code"])
        out += _codes(concept.get("concept", ()))
    return out


def _system_codes(system: str) -> list[str] | None:
    code_system = terminology().get(system) or {}
    if (code_system.get("resourceType"), code_system.get("content")) != ("CodeSystem", "complete"):
        return None
    return _codes(code_system.get("concept", ()))


def _part(entry: dict, seen: frozenset[str]) -> set[tuple[str, str]] | None:
    if "filter" in entry:
        return None
    found: set[tuple[str, str]] = set()
    if system := entry.get("system"):
        codes = [c["code"] for c in entry["concept"]] if "concept" in entry else _system_codes(system)
        if codes is None:
            return None
        found = {(system, code) for code in codes}
    for url in entry.get("valueSet", ()):
        imported = _expand(url.split("|", 1)[0], seen)
        if imported is None:
            return None
        found = found & imported if system else found | imported
    return found


def _expand(url: str, seen: frozenset[str]) -> frozenset[tuple[str, str]] | None:
    value_set = terminology().get(url)
    if url in seen or not value_set or value_set.get("resourceType") != "ValueSet":
        return None
    seen = seen | {url}
    compose = value_set.get("compose") or {}
    included: set[tuple[str, str]] = set()
    for entry in compose.get("include", ()):
        part = _part(entry, seen)
        if part is None:
            return None
        included |= part
    for entry in compose.get("exclude", ()):
        part = _part(entry, seen)
        if part is None:
            return None
        included -= part
    return frozenset(included)


@cache
def expand(url: str) -> frozenset[tuple[str, str]] | None:
    """The `(system, code)` pairs of a ValueSet (`url` or `url|version`), None if not expandable."""
    return _expand(url.split("|", 1)[0], frozenset())
