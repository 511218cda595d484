"""Compiles SearchParameter FHIRPath expressions into fast Python extractors.

Every R4 expression is a small subset of FHIRPath: paths (`Patient.name.given`), unions
(`a | b`), type filters (`x as T`, `x.as(T)`, `x.ofType(T)`), `where(resolve() is T)`,
`where(field='literal')`, `extension('url')`, `first()` and `[n]`, and (Patient's `deceased`
only) a conjunction of tests on such paths: `exists()`, `=` or `!=` a literal. `compile_path`
turns those into a chain of closures over *nodes* — `(fhir_type, json_value)` pairs, so later
steps and the value indexers know each value's type (`effectiveDateTime` is a `dateTime`).
Anything else (custom SearchParameters) falls back to fhirpathpy (compiled once, cached) and
yields nodes of unknown type (`None`), which the indexers handle by the value's shape.

`compile_path` also decides statically whether an expression yields at most one value, which
the storage layout relies on (see docs/search.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.search.elements import base_types, children, is_resource_type
from fhir_server.search.references import reference_type

Node = tuple[str | None, Any]
Extractor = Callable[[dict], list[Node]]
Step = Callable[[list[Node]], list[Node]]

# FHIRPath type names are case-sensitive, but R4 itself writes `value.as(DateTime)`.
_TYPE_NAMES = {t.lower(): t for t in (
    "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "uuid", "oid", "id",
    "code", "markdown", "base64Binary", "date", "dateTime", "instant", "time", "positiveInt",
    "unsignedInt",
)}

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+)|(?P<id>[A-Za-z_%][A-Za-z0-9_]*)"
                    r"|(?P<op>!=|[().\[\]|=,]))")


class Unsupported(Exception):
    """The expression is outside the compiled subset; fhirpathpy evaluates it instead."""


@dataclass(frozen=True, slots=True)
class CompiledPath:
    """An expression compiled for one resource type."""

    extract: Extractor
    single: bool
    compiled: bool  # False when fhirpathpy evaluates it
    types: frozenset[str] | None = None
    """The FHIR types the values can have, where the element model tells (None: unknown)."""


def _tokens(expression: str) -> list[str]:
    out, pos = [], 0
    expression = expression.strip()
    while pos < len(expression):
        m = _TOKEN.match(expression, pos)
        if not m or m.end() == pos:
            raise Unsupported(expression)
        out.append(m.group().strip())
        pos = m.end()
    return out


@dataclass(slots=True)
class _Branch:
    steps: list[Step]
    single: bool
    shape: str  # the path without type filters: branches of one choice element share it
    filtered: str | None = None  # the type of the last `as`/`ofType` filter, if any


class _Parser:
    """Recursive descent over the supported subset, producing branches of steps."""

    def __init__(self, expression: str, roots: frozenset[str]) -> None:
        self.tokens = _tokens(expression)
        self.pos = 0
        self.roots = roots

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise Unsupported(f"expected {expected!r}, got {token!r}")
        self.pos += 1
        return token

    def parse(self) -> list[_Branch]:
        branches = self.union()
        if self.peek() is not None:
            raise Unsupported(self.peek())
        return branches

    def union(self) -> list[_Branch]:
        branches = self.term()
        while self.peek() == "|":
            self.take()
            branches += self.term()
        return branches

    def term(self) -> list[_Branch]:
        if self.peek() == "(":
            self.take()
            inner = self.union()
            self.take(")")
        else:
            root = _Branch([], False, "")
            if self.peek() in self.roots:
                root.shape = self.take()
            else:
                self.invocation(root)
            inner = [root]
        if len(inner) != 1:
            if self.peek() not in (None, "|", ")"):
                raise Unsupported("navigation after a union")
            return inner
        branch = inner[0]
        while (token := self.peek()) in (".", "[", "as"):
            self.take()
            if token == "[":
                index = int(self.take())
                self.take("]")
                branch.steps.append(_index_step(index))
                branch.single = True
            elif token == "as":
                branch.filtered = self.take()
                branch.steps.append(_type_filter(branch.filtered))
            else:
                self.invocation(branch)
        return [branch]

    def invocation(self, branch: _Branch) -> None:
        name = self.take()
        if not name.isidentifier():
            raise Unsupported(name)
        if self.peek() != "(":
            branch.steps.append(_child_step(name))
            branch.shape += "." + name
            return
        self.take("(")
        if name in ("as", "ofType"):
            branch.filtered = self.take()
            branch.steps.append(_type_filter(branch.filtered))
        elif name == "first":
            branch.steps.append(_index_step(0))
            branch.single = True
        elif name == "extension":
            url = _literal(self.take())
            branch.steps += [_child_step("extension"), _field_equals("url", url)]
            branch.shape += f".extension({url})"
        elif name == "where":
            branch.steps.append(self.condition())
            branch.shape += ".where"
        else:
            raise Unsupported(name)
        self.take(")")

    def condition(self) -> Step:
        first = self.take()
        if first == "resolve":
            self.take("(")
            self.take(")")
            self.take("is")
            return _reference_type_filter(self.take())
        self.take("=")
        return _field_equals(first, _literal(self.take()))


def _literal(token: str) -> str:
    if not (token.startswith("'") and token.endswith("'")):
        raise Unsupported(token)
    return token[1:-1].replace("\\'", "'")


def _index_step(index: int) -> Step:
    def step(nodes: list[Node]) -> list[Node]:
        return nodes[index:index + 1]
    return step


def _child_step(name: str) -> Step:
    keys_by_context: dict[str | None, tuple[tuple[str, str], ...]] = {}

    def keys_for(context: str | None, value: dict) -> tuple[tuple[str, str], ...]:
        if context in ("Resource", "DomainResource", None):
            context = value.get("resourceType", context)
        keys = keys_by_context.get(context)
        if keys is None:
            element = children(context).get(name) if context else None
            keys = keys_by_context[context] = element.keys if element else ()
        return keys

    def step(nodes: list[Node]) -> list[Node]:
        out: list[Node] = []
        for context, value in nodes:
            if type(value) is not dict:
                continue
            for key, child_type in keys_for(context, value):
                child = value.get(key)
                if child is None:
                    continue
                if type(child) is list:
                    out.extend((child_type, item) for item in child if item is not None)
                else:
                    out.append((child_type, child))
        return out
    return step


def _type_filter(type_name: str) -> Step:
    wanted = _TYPE_NAMES.get(type_name.lower(), type_name)

    def step(nodes: list[Node]) -> list[Node]:
        return [(t, v) for t, v in nodes if t is not None and wanted in base_types(t)]
    return step


def _reference_type_filter(type_name: str) -> Step:
    def step(nodes: list[Node]) -> list[Node]:
        return [(t, v) for t, v in nodes if type(v) is dict and reference_type(v) == type_name]
    return step


def _field_equals(field: str, literal: str) -> Step:
    def step(nodes: list[Node]) -> list[Node]:
        return [(t, v) for t, v in nodes if type(v) is dict and v.get(field) == literal]
    return step


def _static_single(branch_expression: str, resource_type: str) -> bool:
    """Whether a plain path can hold one value at most, from element cardinalities."""
    contexts = {resource_type}
    for name in branch_expression.split(".")[1:]:
        if name == "where":
            continue
        if name.startswith("extension("):
            return False
        next_contexts = set()
        for context in contexts:
            element = children(context).get(name)
            if element is None:
                continue
            if element.many:
                return False
            next_contexts.update(t for _, t in element.keys)
        contexts = next_contexts
    return True


def _static_types(branch: _Branch, resource_type: str) -> frozenset[str] | None:
    """The types a plain path's values can have, from the element model; None when unknown."""
    contexts = {resource_type}
    for name in branch.shape.split(".")[1:]:
        if name == "where":
            continue
        if name.startswith("extension("):
            return None
        contexts = {t for context in contexts if (element := children(context).get(name))
                    for _, t in element.keys}
    if branch.filtered:
        contexts = {branch.filtered} if branch.filtered in contexts or not contexts else contexts & {branch.filtered}
    return frozenset(contexts) or None


def _run(steps: list[Step]) -> Callable[[list[Node]], list[Node]]:
    def run(nodes: list[Node]) -> list[Node]:
        for step in steps:
            if not nodes:
                break
            nodes = step(nodes)
        return nodes
    return run


def _compile_subset(expression: str, resource_type: str) -> CompiledPath:
    branches = _Parser(expression, frozenset((resource_type, "Resource", "DomainResource"))).parse()
    runs = [_run(b.steps) for b in branches]
    singles = [b.single or _static_single(b.shape, resource_type) for b in branches]
    single = all(singles) and len({b.shape for b in branches}) == 1

    if len(runs) == 1:
        only = runs[0]

        def extract(resource: dict) -> list[Node]:
            return only([(resource_type, resource)])
    else:
        def extract(resource: dict) -> list[Node]:
            root = [(resource_type, resource)]
            out: list[Node] = []
            for run in runs:
                out += run(root)
            return out
    kinds = [_static_types(b, resource_type) for b in branches]
    types = None if any(k is None for k in kinds) else frozenset().union(*kinds)
    return CompiledPath(extract, single, True, types)


@cache
def _fhirpathpy(expression: str) -> Callable[..., list]:
    from fhirpathpy import compile as fp_compile
    from fhirpathpy.models import models
    return fp_compile(expression, models["r4"])


def _evaluate_fallback(expression: str, focus: Any, resource: dict) -> list[Node]:
    try:
        values = _fhirpathpy(expression)(focus, {"resource": resource})
    except Exception:  # an expression that fails on odd data indexes nothing, like an empty result
        return []
    return [(None, v) for v in values if v is not None]


_Test = Callable[[list[Node]], bool | None]


def _clause_test(tokens: list[str]) -> tuple[str, _Test]:
    """The path a conjunction clause tests and the test, by FHIRPath's rules: `exists()` is
    never empty; a comparison is empty for an empty path and false between different types."""
    if tokens[-4:] == [".", "exists", "(", ")"]:
        return " ".join(tokens[:-4]), lambda nodes: bool(nodes)
    if len(tokens) < 3 or tokens[-2] not in ("=", "!="):
        raise Unsupported(" ".join(tokens))
    raw, negate = tokens[-1], tokens[-2] == "!="
    literal: object = {"true": True, "false": False}.get(raw) if raw in ("true", "false") else _literal(raw)

    def test(nodes: list[Node]) -> bool | None:
        if len(nodes) != 1:
            return None  # empty, or an error FHIRPath raises for several values: nothing indexed
        value = nodes[0][1]
        return (type(value) is type(literal) and value == literal) != negate
    return " ".join(tokens[:-2]), test


def _compile_conjunction(expression: str, resource_type: str) -> CompiledPath:
    """`clause and clause...`: one boolean by FHIRPath's three-valued `and` (false if a clause
    is false, else empty if one is empty)."""
    clauses, current, depth = [], [], 0
    for token in [*_tokens(expression), "and"]:
        depth += {"(": 1, ")": -1}.get(token, 0)
        if token == "and" and depth == 0:
            path, test = _clause_test(current)
            clauses.append((_compile_subset(path, resource_type).extract, test))
            current = []
        else:
            current.append(token)
    if len(clauses) < 2:
        raise Unsupported(expression)

    def extract(resource: dict) -> list[Node]:
        results = [test(path(resource)) for path, test in clauses]
        if False in results:
            return [("boolean", False)]
        return [] if None in results else [("boolean", True)]
    return CompiledPath(extract, True, True, frozenset({"boolean"}))


@cache
def compile_path(expression: str, resource_type: str) -> CompiledPath:
    """Compile `expression` (already split to `resource_type`'s part) into an extractor."""
    if not is_resource_type(resource_type):
        raise ValueError(f"not a resource type: {resource_type}")
    try:
        return _compile_subset(expression, resource_type)
    except Unsupported:
        pass
    try:
        return _compile_conjunction(expression, resource_type)
    except Unsupported:
        return CompiledPath(lambda resource: _evaluate_fallback(expression, resource, resource), False, False)


RelativeExtractor = Callable[[Node, dict], list[Node]]


@cache
def compile_relative(expression: str) -> RelativeExtractor:
    """Compile a composite component expression, evaluated on one repetition node of `resource`."""
    try:
        branches = _Parser(expression, frozenset()).parse()
    except Unsupported:
        def fallback(node: Node, resource: dict) -> list[Node]:
            return _evaluate_fallback(expression, node[1], resource)
        return fallback
    runs = [_run(b.steps) for b in branches]

    def extract(node: Node, resource: dict) -> list[Node]:
        out: list[Node] = []
        for run in runs:
            out += run([node])
        return out
    return extract
