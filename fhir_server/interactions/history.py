"""history at instance, type and system level (`[type]/[id]/_history`, `[type]/_history`, `_history`).

A Bundle of type `history`, newest first, with `request`/`response` per entry, `_count`,
`_since`, `_at` and keyset paging links.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_server.fhir.outcome import bad_request
from fhir_server.fhir.primitives import date_time_range, format_instant, new_id, now
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.paging import bundle_links, decode_cursor, encode_cursor, page_size
from fhir_server.interactions.registry import interaction
from fhir_server.interactions.responses import etag, hidden_forbidden, is_hidden, visible_versions
from fhir_server.storage import HistoryPage, Version

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


@interaction("history-instance", "history-type", "history-system")
async def history(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    count = page_size(ctx, req)
    # The history of a resource outside the caller's reach looks like that of an unknown one.
    hidden = bool(route.id) and await is_hidden(ctx, route.type, route.id)
    if hidden and ctx.settings.hidden_status == 403:
        raise hidden_forbidden(route.type, route.id)
    since = _instant_param(req, "_since")
    at = _range_param(req, "_at")
    cursor = decode_cursor(req)
    anchor, backwards = None, False
    if cursor:
        position, backwards = cursor
        anchor = (datetime.fromtimestamp(position["ts"] / 1000, UTC), position["id"])
    page = HistoryPage([], False) if hidden else await ctx.store.history(
        route.type, route.id, count=count, since=since, at=at, anchor=anchor, backwards=backwards)
    # A restricted caller sees the versions of resources it may see now (pages may come out short).
    versions = await visible_versions(ctx, page.versions) if not route.id else page.versions
    older = page.has_more if not backwards else bool(cursor)
    newer = page.has_more if backwards else bool(cursor)
    bundle: Json = {"resourceType": "Bundle", "id": new_id(), "meta": {"lastUpdated": format_instant(now())},
                    "type": "history"}
    if route.interaction == "history-instance" and not (since or at):
        bundle["total"] = 0 if hidden else await ctx.store.count_history(route.type, route.id)
    bundle["link"] = bundle_links(
        ctx, req, req.params,
        next_cursor=encode_cursor(_position(versions[-1]), False) if versions and older else None,
        previous_cursor=encode_cursor(_position(versions[0]), True) if versions and newer else None)
    bundle["entry"] = [_entry(ctx, v) for v in versions]
    return FhirResponse(200, bundle, touched=versions)


def _position(version: Version) -> Json:
    return {"ts": int(version.ts.timestamp() * 1000), "id": f"{version.type}/{version.id}/{version.vid}"}


def _entry(ctx: Context, version: Version) -> Json:
    entry: Json = {"fullUrl": ctx.url(version.type, version.id)}
    if version.resource is not None:
        entry["resource"] = version.resource
    status = "201 Created" if version.vid == 1 else _STATUS[version.method]
    entry["request"] = {"method": version.method,
                        "url": version.type if version.method == "POST" else f"{version.type}/{version.id}"}
    entry["response"] = {"status": status, "etag": etag(version.vid), "lastModified": format_instant(version.ts)}
    return entry


def _range_param(req: FhirRequest, name: str) -> tuple[datetime, datetime] | None:
    raw = req.param(name)
    if raw is None:
        return None
    period = date_time_range(raw)
    if period is None:
        raise bad_request(f"{name} must be a FHIR date, dateTime or instant, not '{raw}'", name)
    return period


def _instant_param(req: FhirRequest, name: str) -> datetime | None:
    period = _range_param(req, name)
    return period[0] if period else None
