"""`Patient/[id]/$everything` (GET or POST): the patient's record as a searchset Bundle.

Matches (search mode `match`) are the Patient and every resource in its compartment (the
`@compartment` index the store keeps), in type then id order and paged by keyset on that order;
each page also holds (mode `include`) the resources its matches reference whose types lie outside
the Patient compartment: Practitioner, Organization, Medication, Location... Other patients are
never included. `start` and `end` keep the matches whose care date (`care_date`: a date search
parameter of their type) overlaps that period, and those without one; `_since` keeps resources
changed since then, `_type` limits the types, `_count` sizes the pages. Every query carries
`access.restrict(type)`; a type named in `_type` must be searchable by the caller (else 403), and
without `_type` the types the caller may not search are left out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from functools import cache

from fhir_server.definitions import compartment_definitions, resource_types, search_parameters
from fhir_server.definitions.model import element_model
from fhir_server.fhir.outcome import FhirError, bad_request, not_found
from fhir_server.fhir.primitives import date_time_range, format_instant, new_id, now
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.paging import CURSOR_PARAM, bundle_links, count_value, encode_cursor
from fhir_server.interactions.paging import decode_cursor as decode_query_cursor
from fhir_server.operations.access import visible
from fhir_server.operations.parameters import operation_parameters
from fhir_server.operations.registry import operation
from fhir_server.search.compartments import KEY as COMPARTMENT
from fhir_server.search.plan import clause_filter, overlap_filter
from fhir_server.search.query import Clause
from fhir_server.search.registry import SearchParam, registry
from fhir_server.search.types.date import HIGH, LOW, parse_range
from fhir_server.storage import Version

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
PARAMETERS = ("start", "end", "_since", "_type", "_count", CURSOR_PARAM)
# The parameters the OperationDefinition lets a client give more than once.
REPEATABLE = frozenset({"_type"})
_REFERENCE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")


# The audit trail is about the record, not part of it: auditors review it through AuditEvent.
NOT_IN_RECORD = frozenset({"AuditEvent"})

# `start` and `end` are care dates, "not record currency dates". R4's `clinical-date` search
# parameter (code `date`) is the care date of the types it applies to; for the other types of the
# compartment that have one, it is the parameter named here: when the care took place, was given
# or was ordered. A type with neither (Patient, Coverage, Claim: only record dates) has no care
# date, so start and end leave its resources in.
CLINICAL_DATE = "http://hl7.org/fhir/SearchParameter/clinical-date"
CARE_DATES: dict[str, str] = {
    "Account": "period",
    "AdverseEvent": "date",
    "Appointment": "date",
    "ChargeItem": "occurrence",
    "Communication": "sent",
    "CommunicationRequest": "authored",
    "Condition": "onset-date",
    "DetectedIssue": "identified",
    "DeviceRequest": "authored-on",
    "DocumentReference": "period",  # its `date` is when the reference was made, not the care documented
    "Goal": "start-date",
    "ImagingStudy": "started",
    "ImmunizationEvaluation": "date",
    "ImmunizationRecommendation": "date",
    "MeasureReport": "period",
    "Media": "created",
    "MedicationAdministration": "effective-time",
    "MedicationDispense": "whenhandedover",
    "MedicationRequest": "authoredon",  # its `date` is the dosage's timing events
    "MedicationStatement": "effective",
    "NutritionOrder": "datetime",
    "QuestionnaireResponse": "authored",
    "RequestGroup": "authored",
    "ResearchSubject": "date",
    "Schedule": "date",
    "ServiceRequest": "authored",
    "Specimen": "collected",
    "VisionPrescription": "datewritten",
}


def compartment_types() -> list[str]:
    """The Patient first, then the types the Patient CompartmentDefinition places in it."""
    members = {r["code"] for r in compartment_definitions()["Patient"]["resource"] if r.get("param")}
    return ["Patient", *sorted(members - {"Patient"} - NOT_IN_RECORD)]


@cache
def _clinical_date_types() -> frozenset[str]:
    return frozenset(next(p["base"] for p in search_parameters() if p["url"] == CLINICAL_DATE))


def care_date(resource_type: str) -> SearchParam | None:
    """The date search parameter giving the care date of `resource_type`, None if it has none."""
    code = "date" if resource_type in _clinical_date_types() else CARE_DATES.get(resource_type)
    param = registry().get(resource_type, code) if code else None
    return param if param is not None and param.type == "date" and param.path is not None else None


@operation("everything", levels={"instance"}, types={"Patient"}, definition=DEFINITION)
async def everything(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    given = _parameters(req)
    count = count_value(ctx, given.get("_count"))
    period = _care_period(given.get("start"), given.get("end"))
    since = _since(given.get("_since"))
    requested = _types(given.get("_type"))
    ctx.access.require("read", "Patient")
    owner = f"Patient/{route.id}"
    if not await ctx.store.find("Patient", visible(ctx, "Patient", {"_id": route.id}), 1, ctx.session):
        raise not_found(f"{owner} is not known")
    query: Json = {f"sp.{COMPARTMENT}": owner}
    if since is not None:
        query["ts"] = {"$gte": since}
    queries = {t: _in_period(query, t, period) for t in compartment_types() if _readable(ctx, t, requested)}
    matches, more = await _page(ctx, queries, count, _resume(req, given))
    total = 0
    for resource_type, type_query in queries.items():
        total += await ctx.store.count(resource_type, visible(ctx, resource_type, type_query), ctx.session)
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


def _in_period(query: Json, resource_type: str, period: tuple[int, int] | None) -> Json:
    """`query` for `resource_type`, keeping (with a `period`) what has no care date or one in it."""
    param = care_date(resource_type) if period is not None else None
    if period is None or param is None:
        return query
    undated = clause_filter(Clause(param, "missing", missing=True))
    return {**query, "$or": [overlap_filter(param, *period), undated]}


async def _page(ctx: Context, queries: dict[str, Json], count: int, resume: tuple[str, str] | None
                ) -> tuple[list[Version], bool]:
    """Up to `count` matches in (type, id) order after `resume`, and whether more follow."""
    page: list[Version] = []
    members = list(queries)
    start = members.index(resume[0]) if resume and resume[0] in members else 0
    for resource_type in members[start:]:
        after = resume[1] if resume and resource_type == resume[0] else None
        wanted = count - len(page)
        found = await ctx.store.find_in_id_order(resource_type, visible(ctx, resource_type, queries[resource_type]),
                                                 wanted + 1, after, ctx.session)
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
            raise bad_request(f"Unsupported parameter '{name}': $everything takes start, end, _since, _type and "
                              "_count", name)
        if not isinstance(value, str | int):
            raise bad_request(f"Parameter '{name}' must be a simple value", name)
        if name in given and name not in REPEATABLE:
            raise bad_request(f"Parameter '{name}' may be given once", name)
        given[name] = f"{given[name]},{value}" if name in given else str(value)
    return given


def _care_period(start: str | None, end: str | None) -> tuple[int, int] | None:
    """The period `start`..`end` as inclusive epoch milliseconds: from the first instant of `start`
    to the last of `end` (open on a side not given); None when neither is given."""
    if start is None and end is None:
        return None
    lo = _date("start", start)[0] if start is not None else LOW
    hi = _date("end", end)[1] if end is not None else HIGH
    if lo > hi:
        raise bad_request(f"start ({start}) is after end ({end})", "start")
    return lo, hi


def _date(name: str, raw: str) -> tuple[int, int]:
    """The first and last millisecond of a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)."""
    primitive = element_model("date").primitive
    if primitive is not None and primitive.regex is not None and primitive.regex.fullmatch(raw):
        try:
            return parse_range(raw)
        except ValueError:  # the pattern lets through days a month does not have (2023-02-30)
            pass
    raise bad_request(f"{name} must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD), not '{raw}'", name)


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
