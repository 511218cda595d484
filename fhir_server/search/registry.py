"""The search parameters known per resource type, driven by SearchParameter resources.

Built on first use from the 1,375 R4 definitions: a definition with several bases
(`Patient.name | Practitioner.name`, or `base: [Resource]`) becomes one `SearchParam` per
concrete resource type holding only that type's part of the expression, compiled by `paths`.
Custom SearchParameter resources are added and removed at run time with `register` and
`unregister`; each change bumps `generation`, which callers (and the extraction plan cache) use
to notice that indexed values may need rebuilding.

`_id` and `_lastUpdated` are answered from the stored document's `_id` and `ts`, so they carry a
`column` and are never extracted into `sp`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from fhir_server.definitions import resource_types, search_parameters
from fhir_server.search.paths import CompiledPath, compile_path, compile_relative

# R4 search.html, "modifiers" per parameter type (`missing` applies to every type).
MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"missing", "exact", "contains"}),
    "token": frozenset({"missing", "text", "not", "above", "below", "in", "not-in", "of-type"}),
    "reference": frozenset({"missing", "identifier", "above", "below"}),  # plus :[type]
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "uri": frozenset({"missing", "above", "below"}),
    "composite": frozenset({"missing"}),
    "special": frozenset({"missing"}),
}
PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
ORDERED_TYPES = frozenset({"number", "date", "quantity"})
# Parameters answered from the stored document itself rather than from `sp`.
COLUMNS = {"_id": "_id", "_lastUpdated": "ts"}
_NOT_DOMAIN = frozenset({"Bundle", "Binary", "Parameters"})
_RESOLVE_IS = re.compile(r"resolve\(\) is (\w+)")


@dataclass(frozen=True, slots=True)
class Component:
    """One part of a composite parameter: its type and its expression relative to a repetition."""

    code: str
    type: str
    expression: str
    extract: Any  # paths.RelativeExtractor


@dataclass(frozen=True, slots=True)
class SearchParam:
    """A search parameter as it applies to one resource type."""

    code: str
    type: str
    url: str
    resource_type: str
    expression: str | None
    path: CompiledPath | None
    single: bool
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    column: str | None = None
    definition: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def modifiers(self) -> frozenset[str]:
        """Modifiers the spec allows for this parameter's type."""
        return MODIFIERS.get(self.type, frozenset({"missing"}))

    @property
    def prefixes(self) -> frozenset[str]:
        """Comparison prefixes accepted in values (empty for unordered types)."""
        return PREFIXES if self.type in ORDERED_TYPES else frozenset()


def split_union(expression: str) -> list[str]:
    """Top-level `|` parts of a FHIRPath expression (parentheses and quotes respected)."""
    parts, depth, current, quoted = [], 0, [], False
    for ch in expression:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "()":
            depth += 1 if ch == "(" else -1
        elif not quoted and ch == "|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _root(part: str) -> str:
    head = part.lstrip("(").strip()
    end = 0
    while end < len(head) and (head[end].isalnum() or head[end] == "_"):
        end += 1
    return head[:end]


def _bases(base: list[str]) -> list[str]:
    types: list[str] = []
    for b in base:
        if b == "Resource":
            types += resource_types()
        elif b == "DomainResource":
            types += [t for t in resource_types() if t not in _NOT_DOMAIN]
        else:
            types.append(b)
    return types


def _targets(declared: list[str], expression: str | None) -> tuple[str, ...]:
    """Declared targets, narrowed when every branch of the expression tests `resolve() is T`."""
    branches = split_union(expression) if expression else []
    tested = [_RESOLVE_IS.findall(b) for b in branches]
    if branches and all(len(t) == 1 for t in tested):
        return tuple(t for t in declared if t in {found[0] for found in tested}) or tuple(declared)
    return tuple(declared)


def _expression_for(expression: str | None, resource_type: str) -> str | None:
    if not expression:
        return None
    parts = [p for p in split_union(expression) if _root(p) in (resource_type, "Resource", "DomainResource")]
    return " | ".join(parts) or None


class Registry:
    """SearchParams per resource type, plus lookup by canonical URL."""

    def __init__(self, definitions: list[dict]) -> None:
        self._lock = threading.Lock()
        self._by_type: dict[str, dict[str, SearchParam]] = {t: {} for t in resource_types()}
        self._by_url: dict[str, dict] = {}
        self._custom: set[str] = set()
        self.generation = 0
        for definition in definitions:
            self._by_url[definition["url"]] = definition
        # Components name other parameters by URL, so every definition is known before adding any.
        for definition in definitions:
            self._add(definition)

    def _component(self, component: dict) -> Component:
        target = self._by_url.get(component["definition"], {})
        return Component(target.get("code", component["definition"].rsplit("/", 1)[-1]),
                         target.get("type", "token"), component["expression"],
                         compile_relative(component["expression"]))

    def _add(self, definition: dict) -> None:
        components = tuple(self._component(c) for c in definition.get("component", ()))
        for resource_type in _bases(definition.get("base", [])):
            if resource_type not in self._by_type:
                continue
            code = definition["code"]
            expression = _expression_for(definition.get("expression"), resource_type)
            path = compile_path(expression, resource_type) if expression else None
            param = SearchParam(
                code=code, type=definition["type"], url=definition["url"], resource_type=resource_type,
                expression=expression, path=path, single=bool(path and path.single),
                targets=_targets(definition.get("target", []), expression), components=components,
                column=COLUMNS.get(code), definition=definition,
            )
            existing = self._by_type[resource_type].get(code)
            # A resource's own definition wins over a Resource/DomainResource-wide one.
            if existing is None or definition["url"] in self._custom or not (
                    set(definition.get("base", ())) & {"Resource", "DomainResource"}):
                self._by_type[resource_type][code] = param

    def params(self, resource_type: str) -> dict[str, SearchParam]:
        """The parameters of `resource_type` keyed by code (empty for unknown types)."""
        return self._by_type.get(resource_type, {})

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        """One parameter of a resource type, or None."""
        return self._by_type.get(resource_type, {}).get(code)

    def by_url(self, url: str) -> dict | None:
        """The SearchParameter resource with this canonical URL."""
        return self._by_url.get(url)

    def register(self, definition: dict) -> None:
        """Add (or replace) a custom SearchParameter resource."""
        with self._lock:
            if definition["url"] in self._by_url:
                self._remove(definition["url"])
            self._custom.add(definition["url"])
            self._by_url[definition["url"]] = definition
            self._add(definition)
            self.generation += 1

    def unregister(self, url: str) -> None:
        """Remove a custom SearchParameter; the R4 one it shadowed (same base and code) comes back."""
        with self._lock:
            if url not in self._custom:
                raise KeyError(url)
            definition = self._by_url[url]
            self._remove(url)
            self._custom.discard(url)
            bases = set(_bases(definition.get("base", [])))
            for other in search_parameters():
                if other["code"] == definition["code"] and bases & set(_bases(other.get("base", []))):
                    self._add(other)
            self.generation += 1

    def _remove(self, url: str) -> None:
        del self._by_url[url]
        for params in self._by_type.values():
            for code in [c for c, p in params.items() if p.url == url]:
                del params[code]


_registry: Registry | None = None
_registry_lock = threading.Lock()


def registry() -> Registry:
    """The process-wide registry, built from the R4 definitions on first use."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = Registry(search_parameters())
    return _registry
