"""search (`GET [type]?`, `POST [type]/_search`, `[Compartment]/[id]/[type]`, `GET /?_type=`).

Parses the parameters per searched type (`search.query`), compiles and runs them
(`search.plan`, `search.runner`) with the caller's access restriction on every query, and
answers a `searchset` Bundle: `total`, `self`/`first`/`next`/`previous` links with keyset
cursors, `match` entries trimmed by `_summary`/`_elements` (contained resources too, with
`_contained`: `search.contained`), `include` entries, and an `outcome` entry listing the
parameters that were ignored (or, with `Prefer: handling=strict`, a 400 instead).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fhir_server.definitions import compartment_definitions, resource_types
from fhir_server.fhir.outcome import FhirError, Issue, bad_request, not_found, operation_outcome
from fhir_server.fhir.primitives import format_instant, new_id, now
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.paging import CURSOR_PARAM, bundle_links, decode_cursor, encode_cursor, page_size
from fhir_server.interactions.registry import interaction
from fhir_server.search import compartments
from fhir_server.search.contained import search_filters
from fhir_server.search.errors import SearchError, bad_search
from fhir_server.search.includes import included, source_projection
from fhir_server.search.keyset import SortField
from fhir_server.search.plan import compile_query, sort_fields
from fhir_server.search.query import Include, Query, ResultParams, parse_query
from fhir_server.search.runner import Hit, Runner, boundary
from fhir_server.search.shaping import select_elements, summarize
from fhir_server.storage import Version
from fhir_server.storage.contained import CONTAINED, container_of

# Handled by the HTTP layer or by paging, never search criteria.
_TRANSPORT = frozenset({"_format", "_pretty", CURSOR_PARAM})
# Parsed by the engine but not implemented here: ignored and reported like unknown parameters.
_IGNORED_RESULT_PARAMS = frozenset({"_offset"})
_INCLUDES = ("_include", "_revinclude")


@dataclass
class Search:
    """A parsed search request: the queries per type and what shapes the result."""

    queries: dict[str, Query]
    include: list[Include]
    revinclude: list[Include]
    ignored: list[str]
    compartment: tuple[str, str] | None

    @property
    def first(self) -> Query:
        return next(iter(self.queries.values()))


@interaction("search-type", "search-system", "search-compartment")
async def search(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    try:
        parsed = _parse(ctx, req, route)
    except SearchError as error:
        raise bad_search(error) from error
    runner = Runner(ctx.database, ctx.access.restrict, ctx.session)
    result = parsed.first.result
    plans = {t: compile_query(q, parsed.compartment) for t, q in parsed.queries.items()}
    try:
        filters = await search_filters(runner, plans, result.contained, result.contained_type)
    except SearchError as error:
        raise FhirError(400, "too-costly", error.message, error.param or None) from error
    fields = sort_fields(result.sort)
    count = 0 if result.summary == "count" else page_size(ctx, req)
    cursor = decode_cursor(req)
    anchor, backwards = cursor if cursor else (None, False)
    if anchor is not None and len(anchor.get("k", ())) != len(fields):
        raise bad_request("The paging cursor belongs to a different sort order", CURSOR_PARAM)
    page = await runner.page(filters, fields, count, _projection(fields, parsed), anchor, backwards)
    extra = await included(runner, page.hits, parsed.include, parsed.revinclude,
                           lambda t: ctx.access.require("search-type", t))
    bundle: Json = {"resourceType": "Bundle", "id": new_id(), "meta": {"lastUpdated": format_instant(now())},
                    "type": "searchset"}
    if result.total != "none" or result.summary == "count":
        bundle["total"] = len(page.hits) if page.complete else await runner.count(filters)
    later = page.more if not backwards else anchor is not None
    earlier = page.more if backwards else anchor is not None
    bundle["link"] = bundle_links(
        ctx, replace(req, path=_link_path(req.path)), _kept_params(req, parsed),
        next_cursor=_cursor(page.hits[-1], fields, False) if page.hits and later else None,
        previous_cursor=_cursor(page.hits[0], fields, True) if page.hits and earlier else None)
    bundle["entry"] = ([_entry(ctx, hit, "match", result.summary, result.elements) for hit in page.hits]
                       + [_entry(ctx, hit, "include", result.summary, []) for hit in extra]
                       + _outcome_entries(parsed.ignored))
    if not bundle["entry"]:
        del bundle["entry"]
    return FhirResponse(200, bundle, touched=[_version(ctx, hit) for hit in page.hits + extra])


def _parse(ctx: Context, req: FhirRequest, route: Route) -> Search:
    strict = req.prefer("handling") == "strict"
    params = [(k, v) for k, v in req.params if k not in _TRANSPORT]
    ignored = [k for k, _ in params if k in _IGNORED_RESULT_PARAMS]
    if strict and ignored:
        raise SearchError(ignored[0], f"parameter {ignored[0]} is not supported")
    params = [(k, v) for k, v in params if k not in _IGNORED_RESULT_PARAMS]
    types, explicit, params = _types(route, params)
    if explicit and route.interaction == "search-system":
        for resource_type in types:  # the dispatcher checked the system search, not each named type
            ctx.access.require("search-type", resource_type)
    types = [t for t in types if explicit or _may_search(ctx, t)]
    if not types:
        raise FhirError(403, "forbidden", "The access token permits searching none of these types")
    criteria = [(k, v) for k, v in params if k.split(":", 1)[0] not in _INCLUDES]
    queries = {t: parse_query(t, criteria, strict) for t in types}
    unknown = sorted({name for q in queries.values() for name in q.unknown})
    if unknown and len(queries) > 1:  # known on some types only: ignored on all, as reported
        criteria = [(k, v) for k, v in criteria if k not in unknown]
        queries = {t: parse_query(t, criteria, strict) for t in types}
    include, revinclude = _parse_includes(types, [(k, v) for k, v in params if k.split(":", 1)[0] in _INCLUDES])
    _check_contained(next(iter(queries.values())).result, len(types), bool(include or revinclude))
    owner, _, owner_id = (route.compartment or "").partition("/")
    return Search(queries, include, revinclude, ignored + unknown, (owner, owner_id) if owner_id else None)


def _types(route: Route, params: list[tuple[str, str]]) -> tuple[list[str], bool, list[tuple[str, str]]]:
    """The types searched, whether the client named them, and the parameters left."""
    if route.interaction == "search-compartment":
        owner = route.compartment.split("/", 1)[0]
        definition = compartment_definitions().get(owner)
        if definition is None:
            raise not_found(f"{owner} is not a compartment (compartments: {', '.join(compartment_definitions())})")
        if route.type != "*":
            return [route.type], True, params
        members = {e["code"] for e in definition.get("resource", ()) if e.get("param")} | {owner}
        return sorted(members), False, params
    if route.interaction == "search-type":
        return [route.type], True, params
    named = [t for k, v in params if k == "_type" for t in v.split(",") if t]
    rest = [(k, v) for k, v in params if k != "_type"]
    unknown = [t for t in named if t not in resource_types()]
    if unknown:
        raise SearchError("_type", f"unknown resource type {unknown[0]!r}")
    if named:
        return list(dict.fromkeys(named)), True, rest
    return list(resource_types()), False, rest


def _may_search(ctx: Context, resource_type: str) -> bool:
    """Whether the caller may search a type it did not name (else it is silently left out)."""
    try:
        ctx.access.require("search-type", resource_type)
    except FhirError:
        return False
    return True


def _check_contained(result: ResultParams, types: int, includes: bool) -> None:
    """Refuse what `_contained=true|both` does not support (docs/search.md, Contained resources)."""
    if result.contained not in ("true", "both"):
        return
    if types > 1:
        raise SearchError("_contained", "_contained applies to a search of one resource type")
    if includes:
        raise SearchError("_contained", "_include and _revinclude are not supported with _contained")
    if result.sort and result.contained_type != "contained":
        # The containers are of other types: the searched type's sort keys do not apply to them.
        raise SearchError("_sort", "_sort with _contained needs _containedType=contained")


def _parse_includes(types: list[str], params: list[tuple[str, str]]) -> tuple[list[Include], list[Include]]:
    """`_include`/`_revinclude` values, each checked against the type it starts from."""
    include: list[Include] = []
    revinclude: list[Include] = []
    for name, raw in params:
        for value in raw.split(","):
            source = value.split(":", 1)[0]
            if name == "_include" and source not in (*types, "*"):
                raise SearchError(name, f"{source} is not a type this search returns")
            context = source if source in resource_types() else types[0]
            result = parse_query(context, [(name, value)]).result
            include += result.include
            revinclude += result.revinclude
    return include, revinclude


def _projection(fields: list[SortField], parsed: Search) -> Json:
    projection = source_projection(parsed.include, parsed.queries)
    projection.update((f.path, 1) for f in fields if f.path.startswith("sp."))
    return projection


def _link_path(path: str) -> str:
    """The GET path of the search (`Patient/_search` pages are linked as `Patient?...`)."""
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[:-1] if parts and parts[-1] == "_search" else parts)


def _kept_params(req: FhirRequest, parsed: Search) -> list[tuple[str, str]]:
    """The parameters the search used: unknown and ignored ones are left out of the links."""
    dropped = set(parsed.ignored) | {"_format", CURSOR_PARAM}
    return [(k, v) for k, v in req.params if k not in dropped]


def _cursor(hit: Hit, fields: list[SortField], backwards: bool) -> str:
    return encode_cursor(boundary(hit, fields), backwards)


def _entry(ctx: Context, hit: Hit, mode: str, summary: str | None, elements: list[str]) -> Json:
    resource_type, doc = hit
    resource = summarize(doc["res"], summary)
    if elements:
        resource = select_elements(resource, elements)
    # A contained resource's `_id` is `[ContainerType]/[id]#[contained id]`, its fullUrl under the base.
    url = ctx.url(doc["_id"]) if resource_type == CONTAINED else ctx.url(resource_type, doc["_id"])
    return {"fullUrl": url, "resource": resource, "search": {"mode": mode}}


def _outcome_entries(ignored: list[str]) -> list[Json]:
    if not ignored:
        return []
    issues = [Issue("warning", "not-supported", f"Unknown or unsupported search parameter '{name}' was ignored",
                    name) for name in dict.fromkeys(ignored)]
    return [{"resource": operation_outcome(issues), "search": {"mode": "outcome"}}]


def _version(ctx: Context, hit: Hit) -> Version:
    """The version a hit shows, for the audit: a contained resource's is its container's."""
    resource_type, doc = hit
    resource_id = doc["_id"]
    if resource_type == CONTAINED:
        resource_type, resource_id = container_of(resource_id)
    members: Any = (doc.get("sp") or {}).get(compartments.KEY) or ()
    return Version(resource_type, resource_id, doc["vid"], doc["ts"], doc["res"],
                   compartments=(members,) if isinstance(members, str) else tuple(members))
