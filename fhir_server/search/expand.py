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

MongoDB answers `$or` and anchored regexes from indexes itself; the rewritten form is equally
correct there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
    """`value` as an operator document: itself, `{$eq: value}` for a plain scalar, else None.

    Only scalars: `{f: <regex>}` is a pattern match where `{$eq: <regex>}` is not, and a plain
    document or array is an exact-match value best left alone.
    """
    if isinstance(value, dict):
        return value if value and all(k.startswith("$") for k in value) else None
    return {"$eq": value} if isinstance(value, str | int | float | datetime) else None


_LITERAL = re.compile(r"\^((?:[^\\.^$*+?()\[\]{}|]|\\[^A-Za-z0-9])+)$")


@dataclass(frozen=True)
class Branch:
    """One conjunction to run: its filter and the residual checks (path, regex) it still needs."""

    filter: Json
    residuals: list[tuple[str, re.Pattern]] = field(default_factory=list)

    def accepts(self, doc: Json) -> bool:
        return all(any(isinstance(v, str) and pattern.search(v) for v in values_at(doc, path))
                   for path, pattern in self.residuals)


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


def branches(filter_: Json) -> list[Branch]:
    """`filter_` as index-friendly branches whose union it matches (itself if too many)."""
    try:
        return [_ranged(c) for c in _dnf(filter_)]
    except _TooMany:
        return [Branch(filter_)]
