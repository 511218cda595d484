"""Rewriting a filter as an OR of `$or`-free conjunctions (disjunctive normal form).

SecantusDB, the embedded database, plans a query on an index only when it has no `$or`
anywhere; one `$or` (date prefixes `ge`/`le`, a comma-separated value list, the keyset
boundary of a sorted page) makes it scan the whole collection. Running each conjunction on
its own lets each use its index; the runner merges their results. MongoDB answers `$or`
branches from indexes itself, and the rewritten form is equally correct there.
"""

from __future__ import annotations

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
        elif _operators(merged[key]) and _operators(value) and not set(merged[key]) & set(value):
            # {f: {$gte: a}} and {f: {$lt: b}} are {f: {$gte: a, $lt: b}}, one index range
            # (MongoDB lets each operator hold on a different array element either way).
            merged[key] = {**merged[key], **value}
        else:
            rest.append(clause)
    if rest:
        merged["$and"] = rest
    return merged


def _operators(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


def branches(filter_: Json) -> list[Json]:
    """`filter_` as a list of `$or`-free filters whose union it matches (itself if too many)."""
    try:
        return [_conjunction(c) for c in _dnf(filter_)]
    except _TooMany:
        return [filter_]
