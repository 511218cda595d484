"""Compilation of parsed queries into MongoDB filters, sorts and sub-query plans.

`compile_query(query)` returns a `Plan`: the filter over `_id`, `ts` and `sp.*` for everything
answerable from the searched collection itself (always excluding tombstones), plus `pending`
sub-queries for chains and `_has`, each a `Plan` on another collection with the rule that turns
its results into a condition on this one:

- a chain `subject:Patient.name=x` runs `name=x` on `Patient`, and the ids found become
  `sp.subject.r in ["Patient/<id>"...]`;
- `_has:Observation:patient:code=x` runs `code=x` on `Observation`, collects the references in
  `sp.patient.r` that point at this type, and the ids become `_id in [...]`.

`resolve(plan, database)` runs the pending sub-queries (recursively, innermost first) with
PyMongo's async API and returns the complete filter. `sort_spec` gives the `_sort` order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fhir_server.search import compartments
from fhir_server.search.errors import SearchError
from fhir_server.search.keyset import SortField
from fhir_server.search.query import Chain, Clause, Criterion, Has, Query, SortKey
from fhir_server.search.registry import SearchParam
from fhir_server.search.types import composite
from fhir_server.search.types import date as date_type
from fhir_server.search.types.by_name import MODULES

NOT_DELETED: dict = {"del": {"$exists": False}}
# A sub-query yielding more ids than this is refused rather than sent as a huge `$in`.
MAX_SUBQUERY_IDS = 10_000


@dataclass(slots=True)
class Pending:
    """A sub-query on another collection whose results become a condition on this one.

    `collect` is `"_id"` (a chain: the ids of matching targets) or a reference field such as
    `sp.patient.r` (a `_has`: the references the matching sources hold); `to_condition` maps the
    collected values to a filter on the outer collection.
    """

    resource_type: str
    plan: Plan
    collect: str
    kind: str  # "chain" or "has"
    param: SearchParam | None = None  # the chained reference parameter (chains)
    outer_type: str = ""  # the type being searched (_has)

    def to_condition(self, values: list[str]) -> dict:
        """The outer condition for the values the sub-query collected."""
        if self.kind == "chain":
            refs = [f"{self.resource_type}/{v}" for v in values]
            return {f"sp.{self.param.code}.r": {"$in": refs}}
        prefix = self.outer_type + "/"
        return {"_id": {"$in": sorted({v[len(prefix):] for v in values if v.startswith(prefix)})}}


@dataclass(slots=True)
class Plan:
    """A compiled query: `filter` is final once every `pending` sub-query is resolved."""

    resource_type: str
    filter: dict
    pending: list[Pending] = field(default_factory=list)
    # Chains over several target types: any of these groups of pendings (OR).
    alternatives: list[list[Pending]] = field(default_factory=list)


def _column_filter(clause: Clause) -> dict:
    column = clause.param.column
    if clause.missing is not None:
        return {column: {"$exists": not clause.missing}}
    if column == "ts":
        return date_type.match_instant_column("ts", list(clause.values))
    ids = [v.code for v in clause.values]
    if clause.modifier == "not":
        return {"_id": {"$nin": ids}}
    return {"_id": ids[0] if len(ids) == 1 else {"$in": ids}}


def _calendar(param: SearchParam) -> bool:
    """Whether every value of the date parameter `param` is a calendar period (a year at most)."""
    return bool(param.type == "date" and param.path and param.path.types
                and param.path.types <= date_type.POINT_TYPES)


def clause_filter(clause: Clause) -> dict:
    """The MongoDB filter for one clause on its parameter's `sp` field (or column)."""
    param = clause.param
    if param.column:
        return _column_filter(clause)
    field_name = f"sp.{param.code}"
    if clause.missing is not None:
        return {field_name: {"$exists": not clause.missing}}
    if param.type == "composite":
        return composite.match(field_name, param.components, list(clause.values))
    if _calendar(param):
        # Values of these types are calendar periods: prefixes become index ranges on the start.
        return date_type.match(field_name, param.single, clause.modifier, list(clause.values), aligned=True)
    return MODULES[param.type].match(field_name, param.single, clause.modifier, list(clause.values))


def overlap_filter(param: SearchParam, lo: int, hi: int) -> dict:
    """Resources with a value of the date parameter `param` sharing an instant with `lo`..`hi` (epoch ms)."""
    return date_type.overlapping(f"sp.{param.code}", param.single, lo, hi)


def _and(filters: list[dict]) -> dict:
    """AND of filters, merged into one document where their keys do not collide."""
    merged: dict = {}
    rest: list[dict] = []
    for f in filters:
        if any(k in merged for k in f):
            rest.append(f)
        else:
            merged.update(f)
    if rest:
        merged.setdefault("$and", []).extend(rest)
    return merged


def _chain_pending(chain: Chain) -> list[Pending]:
    return [Pending(target, _compile_criteria(target, [criterion]), "_id", "chain", param=chain.param)
            for target, criterion in chain.criteria.items()]


def _compile_criteria(resource_type: str, criteria: list[Criterion], extra: list[dict] | None = None) -> Plan:
    filters = [NOT_DELETED, *(extra or [])]
    plan = Plan(resource_type, {})
    for criterion in criteria:
        if isinstance(criterion, Clause):
            filters.append(clause_filter(criterion))
        elif isinstance(criterion, Chain):
            pendings = _chain_pending(criterion)
            if len(pendings) == 1:
                plan.pending += pendings
            else:
                plan.alternatives.append(pendings)
        elif isinstance(criterion, Has):
            source_plan = _compile_criteria(criterion.resource_type, [criterion.criterion])
            plan.pending.append(Pending(criterion.resource_type, source_plan,
                                        f"sp.{criterion.reference}.r", "has", outer_type=resource_type))
    plan.filter = _and(filters)
    return plan


def compile_query(query: Query, compartment: tuple[str, str] | None = None) -> Plan:
    """Compile `query`, optionally restricted to a compartment such as `("Patient", "123")`."""
    extra = [{f"sp.{compartments.KEY}": f"{compartment[0]}/{compartment[1]}"}] if compartment else []
    return _compile_criteria(query.resource_type, query.criteria, extra)


def _sort_field(key: SortKey) -> str:
    param = key.param
    if param.column:
        return param.column
    base = f"sp.{param.code}"
    match param.type:
        case "date":
            return f"{base}.e" if key.descending else f"{base}.s"
        case "number" | "quantity":
            return f"{base}.hi" if key.descending else f"{base}.lo"
        case "token":
            return f"{base}.t"
        case "reference":
            return f"{base}.r"
        case _:  # string, uri
            return f"{base}.v"


# Types whose sort field holds one bare value when the parameter is single-valued (token `t`
# lists code and system|code, strings list every name part).
_SCALAR_TYPES = frozenset({"date", "number", "quantity", "reference", "uri"})


# The first window a sorted page is read by (`windows`), per kind of range-able sort value: a day
# of epoch-ms dates (about 3 birth dates at 100,000 patients), a second of `_lastUpdated` (bulk
# loads write thousands), one unit of a number. Each later window grows from what the last found.
_WINDOWS: dict[str, float | timedelta] = {"date": 86_400_000, "ts": timedelta(seconds=1), "number": 1.0,
                                          "quantity": 1.0}
_YEAR_MS = 366 * 86_400_000


def _via(key: SortKey) -> tuple[str, int] | None:
    """A descending date key sorts by the range ends `e`, which lead no index; a calendar period
    starts (`s`, which does) less than a year before it ends, so its windows read that range of `s`."""
    param = key.param
    calendar = key.descending and param.single and not param.column and _calendar(param)
    return (f"sp.{param.code}.s", _YEAR_MS) if calendar else None


def sort_fields(keys: list[SortKey]) -> list[SortField]:
    """The keyset fields of the `_sort` order, `_id` last (see `keyset`)."""
    fields = [SortField(_sort_field(k), k.descending,
                        single=bool(k.param.column) or (k.param.single and k.param.type in _SCALAR_TYPES),
                        always=bool(k.param.column), window=_WINDOWS.get(k.param.column or k.param.type),
                        via=_via(k))
              for k in keys]
    if not any(f.path == "_id" for f in fields):
        fields.append(SortField("_id", False, single=True, always=True))
    return fields


def sort_spec(keys: list[SortKey]) -> list[tuple[str, int]]:
    """The MongoDB sort for `_sort` keys, `_id` last so paging is stable.

    For a multi-valued parameter MongoDB sorts ascending by the lowest and descending by the
    highest value of the array, which is what the spec asks.
    """
    spec = [(_sort_field(k), -1 if k.descending else 1) for k in keys]
    if not any(f == "_id" for f, _ in spec):
        spec.append(("_id", 1))
    return spec


Restrict = Callable[[str], "dict | None"]
"""The caller's access filter per resource type (`Access.restrict`)."""


def restricted(filter_: dict, resource_type: str, restrict: Restrict | None) -> dict:
    """`filter_` AND the access restriction on `resource_type`, if any."""
    limit = restrict(resource_type) if restrict else None
    return {"$and": [filter_, limit]} if limit is not None else filter_


async def _collect(pending: Pending, database: Any, restrict: Restrict | None, session: Any) -> list[str]:
    sub_filter = await resolve(pending.plan, database, restrict, session)
    cursor = database[pending.resource_type].find(restricted(sub_filter, pending.resource_type, restrict),
                                                  {pending.collect: 1}, session=session)
    values: dict[str, None] = {}
    async for doc in cursor:
        if pending.collect == "_id":
            values[doc["_id"]] = None
        else:
            found = doc.get("sp", {}).get(pending.collect.split(".")[1], {}).get("r")
            for v in (found,) if isinstance(found, str) else (found or ()):
                values[v] = None
        if len(values) > MAX_SUBQUERY_IDS:
            raise SearchError("", f"a chained or _has criterion matches over {MAX_SUBQUERY_IDS} resources")
    return list(values)


async def resolve(plan: Plan, database: Any, restrict: Restrict | None = None, session: Any = None) -> dict:
    """The complete filter of `plan`, running its sub-queries against `database`.

    `restrict` (the caller's access) limits every sub-query, so a chain or `_has` cannot reveal
    resources the caller may not see; the caller applies it to the outer query itself.
    """
    if not plan.pending and not plan.alternatives:
        return plan.filter
    conditions = [plan.filter]
    for pending in plan.pending:
        conditions.append(pending.to_condition(await _collect(pending, database, restrict, session)))
    for group in plan.alternatives:
        options = [p.to_condition(await _collect(p, database, restrict, session)) for p in group]
        conditions.append({"$or": options})
    return {"$and": conditions}
