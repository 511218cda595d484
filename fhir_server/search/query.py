"""Parsing of search requests into typed queries (pure: no database).

`parse_query(resource_type, [(name, value), ...])` reads FHIR search syntax — `name:modifier`,
comma for OR, a repeated name for AND, prefixes, `\\,` `\\$` `\\|` escapes, chains
(`subject:Patient.name=x`), reverse chains (`_has:Observation:patient:code=x`) — and returns a
`Query` of criteria plus the result-shaping parameters (`_sort`, `_count`, `_include`...) kept
apart in `ResultParams`. Bad values and modifiers raise `SearchError` naming the parameter;
unknown parameter names are collected in `Query.unknown` (strict mode raises instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_server.search.errors import SearchError
from fhir_server.search.registry import SearchParam, registry
from fhir_server.search.types import composite, split_escaped
from fhir_server.search.types.by_name import MODULES

RESULT_PARAMS = frozenset({"_sort", "_count", "_include", "_revinclude", "_summary", "_elements",
                           "_total", "_contained", "_containedType", "_offset", "_format", "_pretty"})
# Known FHIR parameters this engine does not evaluate: reported like unknown ones.
UNSUPPORTED = frozenset({"_text", "_content", "_list", "_query", "_filter", "_type"})
_SUPPORTED_MODIFIERS = {
    "string": {"missing", "exact", "contains"},
    "token": {"missing", "text", "not", "of-type", "in", "not-in"},
    "reference": {"missing", "identifier"},
    "uri": {"missing", "above", "below"},
}
_SUMMARY = frozenset({"true", "text", "data", "count", "false"})
_TOTAL = frozenset({"none", "estimate", "accurate"})


@dataclass(frozen=True, slots=True)
class Clause:
    """One criterion on a parameter of the query's type: any of `values` (or `:missing`)."""

    param: SearchParam
    modifier: str | None
    values: tuple[Any, ...] = ()
    missing: bool | None = None


@dataclass(frozen=True, slots=True)
class Chain:
    """`ref[:Type].rest=value`: resources whose `ref` points at a target matching `criteria`."""

    param: SearchParam
    criteria: dict[str, Criterion]  # per target type, the criterion on that type


@dataclass(frozen=True, slots=True)
class Has:
    """`_has:Type:ref:rest=value`: resources referred to (by `ref`) from `Type` matching `criterion`."""

    resource_type: str
    reference: str
    criterion: Criterion


Criterion = Clause | Chain | Has


@dataclass(frozen=True, slots=True)
class SortKey:
    """One `_sort` entry."""

    param: SearchParam
    descending: bool


@dataclass(frozen=True, slots=True)
class Include:
    """One `_include` / `_revinclude` entry: `source:param[:target]`, `*`, with `:iterate`."""

    source: str
    param: str
    target: str | None
    iterate: bool


@dataclass(slots=True)
class ResultParams:
    """The result-shaping parameters, validated but not compiled into the filter."""

    sort: list[SortKey] = field(default_factory=list)
    count: int | None = None
    offset: int | None = None
    include: list[Include] = field(default_factory=list)
    revinclude: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    total: str | None = None
    contained: str | None = None
    contained_type: str | None = None


@dataclass(slots=True)
class Query:
    """A parsed search on one resource type: all `criteria` must hold (AND)."""

    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    result: ResultParams = field(default_factory=ResultParams)
    unknown: list[str] = field(default_factory=list)


def _param(resource_type: str, code: str) -> SearchParam | None:
    return registry().get(resource_type, code)


def _parse_missing(name: str, raw: str) -> bool:
    if raw not in ("true", "false"):
        raise SearchError(name, f":missing takes true or false, not {raw!r}")
    return raw == "true"


def _parse_values(name: str, param: SearchParam, modifier: str | None, raw: str) -> tuple[Any, ...]:
    parts = split_escaped(raw, ",", keep_escapes=True)
    if any(p == "" for p in parts):
        raise SearchError(name, "empty value")
    try:
        if param.type == "composite":
            return tuple(composite.parse(p, param.components) for p in parts)
        module = MODULES[param.type]
        if param.type == "reference":
            return tuple(module.parse(p, modifier, param.targets) for p in parts)
        if param.type == "string":
            return tuple(split_escaped(p, "")[0] for p in parts)
        return tuple(module.parse(p, modifier) for p in parts)
    except SearchError as e:
        raise SearchError(name, e.message) from None


def _check_modifier(name: str, param: SearchParam, modifier: str | None) -> None:
    if modifier is None or modifier == "missing":
        return
    if param.type == "reference" and modifier not in param.modifiers:
        if param.targets and modifier not in param.targets:
            raise SearchError(name, f"{modifier} is not a target type of {param.code}")
        return
    if modifier not in param.modifiers:
        raise SearchError(name, f"unknown modifier :{modifier} for a {param.type} parameter")
    if modifier not in _SUPPORTED_MODIFIERS.get(param.type, {"missing"}):
        raise SearchError(name, f"modifier :{modifier} is not supported")


def _clause(name: str, param: SearchParam, modifier: str | None, raw: str) -> Clause:
    _check_modifier(name, param, modifier)
    if param.type == "special" or (param.path is None and param.column is None):
        raise SearchError(name, f"parameter {param.code} is not supported")
    if modifier == "missing":
        return Clause(param, modifier, missing=_parse_missing(name, raw))
    return Clause(param, modifier, _parse_values(name, param, modifier, raw))


def _chain(resource_type: str, name: str, head: str, rest: str, raw: str) -> Chain | None:
    code, _, type_modifier = head.partition(":")
    param = _param(resource_type, code)
    if param is None:
        return None
    if param.type != "reference":
        raise SearchError(name, f"{code} is not a reference parameter and cannot be chained")
    targets = (type_modifier,) if type_modifier else param.targets
    if type_modifier and param.targets and type_modifier not in param.targets:
        raise SearchError(name, f"{type_modifier} is not a target type of {code}")
    criteria = {}
    for target in targets:
        criterion = _criterion(target, name, rest, raw)
        if criterion is not None:
            criteria[target] = criterion
    if not criteria:
        raise SearchError(name, f"no target of {code} has a parameter {rest.split('.')[0]!r}")
    return Chain(param, criteria)


def _has(resource_type: str, name: str, raw: str) -> Has:
    # _has:Type:reference:rest where rest is a parameter (possibly itself a _has).
    parts = name.split(":", 3)
    if len(parts) < 4 or not all(parts[1:]):
        raise SearchError(name, "_has needs _has:Type:reference:parameter")
    _, source, reference, rest = parts
    ref_param = _param(source, reference)
    if ref_param is None or ref_param.type != "reference":
        raise SearchError(name, f"{source} has no reference parameter {reference!r}")
    if ref_param.targets and resource_type not in ref_param.targets:
        raise SearchError(name, f"{source}.{reference} cannot refer to {resource_type}")
    criterion = _criterion(source, name, rest, raw)
    if criterion is None:
        raise SearchError(name, f"{source} has no parameter {rest.split(':')[0]!r}")
    return Has(source, reference, criterion)


def _criterion(resource_type: str, name: str, key: str, raw: str) -> Criterion | None:
    """The criterion for parameter `key` (name with modifier/chain) on `resource_type`, None if unknown."""
    if key.startswith("_has:"):
        return _has(resource_type, key, raw)
    head, dot, rest = key.partition(".")
    if dot:
        return _chain(resource_type, name, head, rest, raw)
    code, _, modifier = key.partition(":")
    param = _param(resource_type, code)
    if param is None:
        return None
    return _clause(name, param, modifier or None, raw)


def _non_negative(name: str, raw: str) -> int:
    if not raw.isdigit():
        raise SearchError(name, f"expected a non-negative integer, got {raw!r}")
    return int(raw)


def _one_of(name: str, raw: str, allowed: frozenset[str]) -> str:
    if raw not in allowed:
        raise SearchError(name, f"expected one of {', '.join(sorted(allowed))}, got {raw!r}")
    return raw


def _includes(resource_type: str, name: str, raw: str, reverse: bool) -> list[Include]:
    base, _, modifier = name.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise SearchError(name, f"unknown modifier :{modifier}")
    out = []
    for value in raw.split(","):
        if value == "*":
            out.append(Include("*", "*", None, bool(modifier)))
            continue
        parts = value.split(":")
        if len(parts) not in (2, 3):
            raise SearchError(name, f"expected Type:parameter[:targetType], got {value!r}")
        source, code, target = parts[0], parts[1], parts[2] if len(parts) == 3 else None
        if not reverse and not modifier and source != resource_type:
            raise SearchError(name, f"{base} source must be {resource_type}, got {source}")
        param = _param(source, code)
        if code != "*" and (param is None or param.type != "reference"):
            raise SearchError(name, f"{source} has no reference parameter {code!r}")
        out.append(Include(source, code, target, bool(modifier)))
    return out


def _sort(resource_type: str, raw: str) -> list[SortKey]:
    keys = []
    for item in raw.split(","):
        descending = item.startswith("-")
        code = item.lstrip("-")
        param = _param(resource_type, code)
        if param is None or param.type in ("composite", "special"):
            raise SearchError("_sort", f"cannot sort {resource_type} by {code!r}")
        keys.append(SortKey(param, descending))
    return keys


def _result_param(query: Query, name: str, raw: str) -> None:
    result, base = query.result, name.split(":", 1)[0]
    match base:
        case "_sort":
            result.sort = _sort(query.resource_type, raw)
        case "_count":
            result.count = _non_negative(name, raw)
        case "_offset":
            result.offset = _non_negative(name, raw)
        case "_include" | "_revinclude":
            target = result.include if base == "_include" else result.revinclude
            target += _includes(query.resource_type, name, raw, base == "_revinclude")
        case "_summary":
            result.summary = _one_of(name, raw, _SUMMARY)
        case "_elements":
            result.elements += [e.strip() for e in raw.split(",") if e.strip()]
        case "_total":
            result.total = _one_of(name, raw, _TOTAL)
        case "_contained":
            result.contained = _one_of(name, raw, frozenset({"true", "false", "both"}))
        case "_containedType":
            result.contained_type = _one_of(name, raw, frozenset({"container", "contained"}))
        # _format and _pretty belong to the HTTP layer.


def parse_query(resource_type: str, params: list[tuple[str, str]], strict: bool = False) -> Query:
    """Parse decoded `(name, value)` pairs of a search on `resource_type`.

    Raises `SearchError` for malformed values and modifiers, and in `strict` mode for unknown
    parameters (otherwise listed in `Query.unknown`, which the caller may report).
    """
    if not registry().params(resource_type):
        raise SearchError("", f"unknown resource type {resource_type!r}")
    query = Query(resource_type)
    for name, raw in params:
        base = name.split(":", 1)[0]
        if base in RESULT_PARAMS:
            _result_param(query, name, raw)
            continue
        criterion = None if base in UNSUPPORTED else _criterion(resource_type, name, name, raw)
        if criterion is None:
            if strict:
                raise SearchError(name, f"unknown or unsupported parameter {name!r} for {resource_type}")
            query.unknown.append(name)
        else:
            query.criteria.append(criterion)
    return query
