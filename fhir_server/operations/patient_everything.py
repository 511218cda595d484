"""`Patient/[id]/$everything` (GET or POST): the patient's record as a searchset Bundle.

Matches (search mode `match`) are the Patient and every resource in its compartment (the
`@compartment` index the store keeps), in type then id order and paged by keyset on that order;
each page also holds (mode `include`) the resources its matches reference whose types lie outside
the Patient compartment: Practitioner, Organization, Medication, Location... Other patients are
never included. `_since` keeps resources changed since then, `_type` limits the types, `_count`
sizes the pages. Every query carries `access.restrict(type)`; a type named in `_type` must be
searchable by the caller (else 403), and without `_type` the types the caller may not search are
left out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from fhir_server.definitions import compartment_definitions, resource_types
from fhir_server.fhir.outcome import FhirError, bad_request, not_found
from fhir_server.fhir.primitives import date_time_range, format_instant, new_id, now
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.paging import CURSOR_PARAM, bundle_links, count_value, encode_cursor
from fhir_server.interactions.paging import decode_cursor as decode_query_cursor
from fhir_server.operations.access import visible
from fhir_server.operations.parameters import operation_parameters
from fhir_server.operations.registry import operation
from fhir_server.search.compartments import KEY as COMPARTMENT
from fhir_server.storage import Version

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
PARAMETERS = ("_since", "_type", "_count", CURSOR_PARAM)
_REFERENCE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")


# The audit trail is about the record, not part of it: auditors review it through AuditEvent.
NOT_IN_RECORD = frozenset({"AuditEvent"})


def compartment_types() -> list[str]:
    """The Patient first, then the types the Patient CompartmentDefinition places in it."""
    members = {r["code"] for r in compartment_definitions()["Patient"]["resource"] if r.get("param")}
    return ["Patient", *sorted(members - {"Patient"} - NOT_IN_RECORD)]


@operation("everything", levels={"instance"}, types={"Patient"}, definition=DEFINITION)
async def everything(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    given = _parameters(req)
    count = count_value(ctx, given.get("_count"))
    since = _since(given.get("_since"))
    requested = _types(given.get("_type"))
    ctx.access.require("read", "Patient")
    owner = f"Patient/{route.id}"
    if not await ctx.store.find("Patient", visible(ctx, "Patient", {"_id": route.id}), 1, ctx.session):
        raise not_found(f"{owner} is not known")
    members = [t for t in compartment_types() if _readable(ctx, t, requested)]
    query: Json = {f"sp.{COMPARTMENT}": owner}
    if since is not None:
        query["ts"] = {"$gte": since}
    matches, more = await _page(ctx, members, query, count, _resume(req, given))
    total = 0
    for resource_type in members:
        total += await ctx.store.count(resource_type, visible(ctx, resource_type, query), ctx.session)
    included = await _referenced(ctx, matches, set(compartment_types()) | NOT_IN_RECORD, requested, since)
    params = [(k, v) for k, v in given.items() if k != CURSOR_PARAM]
    last = matches[-1] if matches and more else None
    bundle: Json = {
        "resourceType": "Bundle", "id": new_id(), "meta": {"lastUpdated": format_instant(now())},
        "type": "searchset", "total": total,
        "link": bundle_links(ctx, req, params, previous_cursor=None,
                             next_cursor=encode_cursor({"t": last.type, "i": last.id}, False) if last else None),
        "entry": [_entry(ctx, v, "match") for v in matches] + [_entry(ctx, v, "include") for v in included]}
    return FhirResponse(200, bundle, touched=[*matches, *included])


async def _page(ctx: Context, members: list[str], query: Json, count: int, resume: tuple[str, str] | None
                ) -> tuple[list[Version], bool]:
    """Up to `count` matches in (type, id) order after `resume`, and whether more follow."""
    page: list[Version] = []
    start = members.index(resume[0]) if resume and resume[0] in members else 0
    for resource_type in members[start:]:
        after = resume[1] if resume and resource_type == resume[0] else None
        wanted = count - len(page)
        found = await ctx.store.find_in_id_order(resource_type, visible(ctx, resource_type, query), wanted + 1,
                                                 after, ctx.session)
        page += found[:wanted]
        if len(found) > wanted:
            return page, True
    return page, False


async def _referenced(ctx: Context, matches: list[Version], compartment: set[str], requested: set[str] | None,
                      since: datetime | None) -> list[Version]:
    """The resources outside the compartment that `matches` reference, as far as the caller may see them."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for version in matches:
        for resource_type, resource_id in _references(version.resource):
            if resource_type not in compartment and resource_type in resource_types():
                wanted[resource_type].add(resource_id)
    out: list[Version] = []
    for resource_type, ids in sorted(wanted.items()):
        if not _readable(ctx, resource_type, requested):
            continue
        query: Json = {"_id": {"$in": sorted(ids)}}
        if since is not None:
            query["ts"] = {"$gte": since}
        out += await ctx.store.find(resource_type, visible(ctx, resource_type, query), len(ids), ctx.session)
    return out


def _references(value: object) -> Iterator[tuple[str, str]]:
    """The relative literal references (`Type/id`) anywhere in a resource."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and (match := _REFERENCE.fullmatch(item)):
                yield match.group(1), match.group(2)
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _readable(ctx: Context, resource_type: str, requested: set[str] | None) -> bool:
    """Whether `resource_type` belongs in the result: asked for (if `_type` was given) and searchable.

    A type the caller named is required (403 when not allowed); others are simply left out.
    """
    if requested is not None:
        if resource_type not in requested:
            return False
        ctx.access.require("search-compartment", resource_type)
        return True
    try:
        ctx.access.require("search-compartment", resource_type)
    except FhirError:
        return False
    return True


def _entry(ctx: Context, version: Version, mode: str) -> Json:
    return {"fullUrl": ctx.url(version.type, version.id), "resource": version.resource, "search": {"mode": mode}}


def _parameters(req: FhirRequest) -> dict[str, str]:
    given: dict[str, str] = {}
    for name, value in operation_parameters(req):
        if name not in PARAMETERS:
            raise bad_request(f"Unsupported parameter '{name}': $everything takes _since, _type and _count", name)
        if not isinstance(value, str | int):
            raise bad_request(f"Parameter '{name}' must be a simple value", name)
        given[name] = f"{given[name]},{value}" if name == "_type" and name in given else str(value)
    return given


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    period = date_time_range(raw)
    if period is None:
        raise bad_request(f"_since must be a FHIR instant, not '{raw}'", "_since")
    return period[0]


def _types(raw: str | None) -> set[str] | None:
    if raw is None:
        return None
    types = {t.strip() for t in raw.split(",") if t.strip()}
    unknown = sorted(t for t in types if t not in resource_types())
    if unknown:
        raise bad_request(f"_type names unknown resource types: {', '.join(unknown)}", "_type")
    return types


def _resume(req: FhirRequest, given: dict[str, str]) -> tuple[str, str] | None:
    """The (type, id) after which this page starts, from the `_cursor` of a `next` link."""
    if CURSOR_PARAM not in given:
        return None
    position, _ = decode_query_cursor(req) or ({}, False)
    if not isinstance(position.get("t"), str) or not isinstance(position.get("i"), str):
        raise bad_request("Invalid paging cursor", CURSOR_PARAM)
    return position["t"], position["i"]
