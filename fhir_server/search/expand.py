"""Rewriting a filter into index-friendly parts: `$or`-free conjunctions and prefix ranges.

SecantusDB, the embedded database, plans a query on an index only when it has no `$or` and no
`$regex` anywhere; one `$or` (date prefixes `ge`/`le`, a comma-separated value list, the keyset
boundary of a sorted page) or one starts-with regular expression (string search, `system|`
tokens, `:below`) makes it scan the whole collection. So a filter is rewritten as:

- an OR of `$or`-free conjunctions (disjunctive normal form), each run on its own and merged
  by the runner;
- in each, a top-level anchored literal regex `^abc` becomes the range `["abc", "abd")`, which
  an index serves, plus a *residual* check the runner applies to the documents the range finds
  (on an array field the range alone could be met by two different elements).

Except where the filter also holds an equality on a *selective* field (`_id`, an indexed
reference such as `sp.patient.r`, the compartment): that equality finds few documents through an
index, and each branch would be served by the same index anyway, so the `$or` parts are instead
*checked* in Python (`matcher.matches`) on what one query finds.

MongoDB answers `$or` and anchored regexes from indexes itself; the rewritten form is equally
correct there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_server.search.matcher import matches

Json = dict[str, Any]
MAX_BRANCHES = 16
"""Beyond this many conjunctions the filter is left as it is (one query, maybe a scan)."""


class _TooMany(Exception):
    pass


def _dnf(filter_: Json) -> list[list[Json]]:
    result: list[list[Json]] = [[]]
    for key, value in filter_.items():
        if key == "$or":
            alternatives = [c for alternative in value for c in _dnf(alternative)]
            result = [r + a for r in result for a in alternatives]
        elif key == "$and":
            for part in value:
                parts = _dnf(part)
                result = [r + p for r in result for p in parts]
        else:
            result = [[*r, {key: value}] for r in result]
        if len(result) > MAX_BRANCHES:
            raise _TooMany
    return result


def _conjunction(clauses: list[Json]) -> Json:
    merged: Json = {}
    rest: list[Json] = []
    for clause in clauses:
        (key, value), = clause.items()
        if key not in merged:
            merged[key] = value
            continue
        left, right = _as_operators(merged[key]), _as_operators(value)
        if left is not None and right is not None and not set(left) & set(right):
            # {f: {$gte: a}} and {f: {$lt: b}} are {f: {$gte: a, $lt: b}}, one index range, and
            # {f: a} and {f: {$gte: b}} are {f: {$eq: a, $gte: b}}, one index lookup (MongoDB
            # lets each operator hold on a different array element either way).
            merged[key] = {**left, **right}
        else:
            rest.append(clause)
    if rest:
        merged["$and"] = rest
    return merged


def _as_operators(value: Any) -> Json | None:
    """`value` as an operator document: itself, `{$eq: value}` for a plain scalar or null, else None.

    Only scalars: `{f: <regex>}` is a pattern match where `{$eq: <regex>}` is not, and a plain
    document or array is an exact-match value best left alone.
    """
    if isinstance(value, dict):
        return value if value and all(k.startswith("$") for k in value) else None
    return {"$eq": value} if value is None or isinstance(value, str | int | float | datetime) else None


_LITERAL = re.compile(r"\^((?:[^\\.^$*+?()\[\]{}|]|\\[^A-Za-z0-9])+)$")


@dataclass(frozen=True)
class Branch:
    """One conjunction to run: its filter and the residual checks it still needs in Python."""

    filter: Json
    residuals: list[tuple[str, re.Pattern]] = field(default_factory=list)
    """(path, regex): a value at the path must match (the range in `filter` is wider)."""
    checks: list[Json] = field(default_factory=list)
    """Filters the documents found must match too (`$or` parts left out of `filter`)."""

    @property
    def exact(self) -> bool:
        """Whether `filter` alone finds exactly this branch's matches."""
        return not self.residuals and not self.checks

    def paths(self) -> list[str]:
        """The fields the residual checks read (to fetch along)."""
        return [path for path, _ in self.residuals] + [p for check in self.checks for p in _fields(check)]

    def accepts(self, doc: Json) -> bool:
        return (all(any(isinstance(v, str) and pattern.search(v) for v in values_at(doc, path))
                    for path, pattern in self.residuals)
                and all(matches(check, doc) for check in self.checks))


def _fields(filter_: Json) -> list[str]:
    """The document fields `filter_` reads."""
    out: list[str] = []
    for key, value in filter_.items():
        if key in ("$and", "$or"):
            out += [f for part in value for f in _fields(part)]
        elif not key.startswith("$"):
            out.append(key)
    return out


def values_at(doc: Any, path: str) -> list[Any]:
    """Every value at a dotted `path`, through arrays, as MongoDB reads it."""
    found: list[Any] = [doc]
    for part in path.split("."):
        step: list[Any] = []
        for item in found:
            for element in item if isinstance(item, list) else [item]:
                if isinstance(element, dict) and part in element:
                    step.append(element[part])
        found = step
    return [v for item in found for v in (item if isinstance(item, list) else [item])]


def _ranged(clauses: list[Json]) -> Branch:
    """Anchored literal regexes as index ranges plus residual checks."""
    kept: list[Json] = []
    residuals: list[tuple[str, re.Pattern]] = []
    for clause in clauses:
        (key, value), = clause.items()
        pattern = value.get("$regex") if isinstance(value, dict) and set(value) == {"$regex"} else None
        literal = _LITERAL.match(pattern) if isinstance(pattern, str) and not key.startswith("$") else None
        if literal is None:
            kept.append(clause)
            continue
        prefix = re.sub(r"\\(.)", r"\1", literal.group(1))
        following = ord(prefix[-1]) + 1
        if following > 0x10FFFF or 0xD800 <= following <= 0xDFFF:  # no successor character to bound by
            kept.append(clause)
            continue
        kept.append({key: {"$gte": prefix, "$lt": prefix[:-1] + chr(following)}})
        residuals.append((key, re.compile(pattern)))
    return Branch(_conjunction(kept), residuals)


def _conjuncts(filter_: Json) -> list[Json]:
    """The top-level conjunction of `filter_` as one-key clauses (`$and` flattened)."""
    out: list[Json] = []
    for key, value in filter_.items():
        if key == "$and":
            out += [c for part in value for c in _conjuncts(part)]
        else:
            out.append({key: value})
    return out


def _pins(clause: Json, selective: frozenset[str]) -> bool:
    """Whether `clause` is an equality on a selective field."""
    (key, value), = clause.items()
    return key in selective and (isinstance(value, str) or (isinstance(value, dict) and set(value) == {"$eq"}))


def branches(filter_: Json, selective: frozenset[str] = frozenset()) -> list[Branch]:
    """`filter_` as index-friendly branches whose union it matches (itself if too many).

    With an equality on one of the `selective` fields, one branch: its `$or` parts become checks.
    """
    clauses = _conjuncts(filter_)
    checks = [c for c in clauses if "$or" in c]
    if checks and any(_pins(c, selective) for c in clauses):
        found = _ranged([c for c in clauses if "$or" not in c])
        return [Branch(found.filter, found.residuals, checks)]
    try:
        return [_ranged(c) for c in _dnf(filter_)]
    except _TooMany:
        return [Branch(filter_)]
