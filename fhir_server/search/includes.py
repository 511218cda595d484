"""`_include` and `_revinclude` (with `:iterate` and `*`): the resources a page brings along.

Included resources are found from the reference index each stored document carries
(`sp.<param>.r` holds `Type/id`), never by re-reading resource JSON: `_include` follows a
page's references, `_revinclude` finds the documents whose references point at the page.
`:iterate` repeats on what was just included, a bounded number of rounds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from fhir_server.definitions import resource_types
from fhir_server.search.query import Include
from fhir_server.search.registry import registry
from fhir_server.search.runner import HIT_PROJECTION, Hit, Runner

Json = dict[str, Any]
MAX_ROUNDS = 4
"""`:iterate` rounds after the first (cycles stop earlier: nothing new is found)."""
MAX_INCLUDED = 1000
"""Included resources per page at most, so one request cannot pull in a whole database."""


def _references(doc: Json, code: str) -> list[str]:
    refs = ((doc.get("sp") or {}).get(code) or {}).get("r")
    if refs is None:
        return []
    return [refs] if isinstance(refs, str) else list(refs)


def _reference_codes(resource_type: str) -> list[str]:
    return [code for code, p in registry().params(resource_type).items() if p.type == "reference"]


def _followed_codes(include: Include, resource_type: str) -> list[str]:
    """The reference parameters `include` follows from a `resource_type` document."""
    if include.source not in ("*", resource_type):
        return []
    return _reference_codes(resource_type) if include.param == "*" else [include.param]


def _forward(hits: list[Hit], include: Include) -> Iterable[str]:
    """The `Type/id` references `include` follows from `hits`."""
    for resource_type, doc in hits:
        for code in _followed_codes(include, resource_type):
            for ref in _references(doc, code):
                if include.target is None or ref.startswith(include.target + "/"):
                    yield ref


def source_projection(includes: list[Include], resource_types: Iterable[str]) -> Json:
    """What to fetch of documents of `resource_types` that `includes` start from: the entry
    fields and only the references followed, not the whole `sp` (the bulk of a document)."""
    followed = {f"sp.{code}.r" for include in includes for resource_type in resource_types
                for code in _followed_codes(include, resource_type)}
    return {**HIT_PROJECTION, **dict.fromkeys(sorted(followed), 1)}


def _reverse_sources(include: Include, page_types: set[str]) -> list[tuple[str, str]]:
    """(source type, reference code) pairs `include` searches for references to `page_types`."""
    if include.source != "*" and include.param != "*":
        return [(include.source, include.param)]
    sources = resource_types() if include.source == "*" else [include.source]
    pairs = []
    for source in sources:
        for code, param in registry().params(source).items():
            if param.type == "reference" and (not param.targets or page_types & set(param.targets)):
                pairs.append((source, code))
    return pairs


async def included(runner: Runner, hits: list[Hit], includes: list[Include], revincludes: list[Include],
                   require: Callable[[str], None]) -> list[Hit]:
    """The resources `includes`/`revincludes` bring along with `hits`, each once, not in `hits`.

    `require(type)` is called for every type about to be included (403 if the caller may not).
    """
    seen = {(t, d["_id"]) for t, d in hits}
    found: list[Hit] = []
    frontier, first = hits, True
    for _ in range(MAX_ROUNDS + 1):
        round_includes = [i for i in includes if first or i.iterate]
        round_revincludes = [i for i in revincludes if first or i.iterate]
        if not frontier or not (round_includes or round_revincludes) or len(found) >= MAX_INCLUDED:
            break
        new = await _one_round(runner, frontier, round_includes, round_revincludes, seen, require)
        new = new[:MAX_INCLUDED - len(found)]
        found += new
        frontier, first = new, False
    return found


async def _one_round(runner: Runner, frontier: list[Hit], includes: list[Include], revincludes: list[Include],
                     seen: set[tuple[str, str]], require: Callable[[str], None]) -> list[Hit]:
    # What was found now is the next round's frontier: it needs the references iterating ones follow.
    iterating = [i for i in includes if i.iterate]
    wanted: dict[str, set[str]] = defaultdict(set)
    for include in includes:
        for ref in _forward(frontier, include):
            resource_type, _, resource_id = ref.partition("/")
            if (resource_type, resource_id) not in seen:
                wanted[resource_type].add(resource_id)
    new: list[Hit] = []
    for resource_type, ids in sorted(wanted.items()):
        if registry().params(resource_type):
            require(resource_type)
            new += await _fetch(runner, resource_type, {"_id": {"$in": sorted(ids)}}, seen, iterating)
    page_refs = sorted({f"{t}/{d['_id']}" for t, d in frontier})
    page_types = {t for t, _ in frontier}
    by_source: dict[str, list[str]] = defaultdict(list)
    for include in revincludes:
        for source, code in _reverse_sources(include, page_types):
            by_source[source].append(code)
    for source, codes in sorted(by_source.items()):
        require(source)
        clauses = [{f"sp.{code}.r": {"$in": page_refs}} for code in sorted(set(codes))]
        new += await _fetch(runner, source, clauses[0] if len(clauses) == 1 else {"$or": clauses}, seen, iterating)
    return new


async def _fetch(runner: Runner, resource_type: str, filter_: Json, seen: set[tuple[str, str]],
                 iterating: list[Include]) -> list[Hit]:
    fields = source_projection(iterating, [resource_type])
    docs = await runner.find(resource_type, filter_, fields).limit(MAX_INCLUDED).to_list(length=None)
    out = []
    for doc in docs:
        if (resource_type, doc["_id"]) not in seen:
            seen.add((resource_type, doc["_id"]))
            out.append((resource_type, doc))
    return out

