"""Pieces shared by interactions: accepting a request body, version preconditions, response headers."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from fhir_server.config import Settings
from fhir_server.fhir.outcome import FhirError, bad_request, gone, not_found
from fhir_server.fhir.primitives import format_http_date
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json
from fhir_server.storage import Version
from fhir_server.validation import validate_resource
from fhir_server.validation.conformance import enforce_profiles


def etag(vid: int) -> str:
    return f'W/"{vid}"'


def version_headers(ctx: Context, version: Version) -> dict[str, str]:
    """ETag, Last-Modified and the version-specific Location of a stored version."""
    return {
        "ETag": etag(version.vid),
        "Last-Modified": format_http_date(version.ts),
        "Location": ctx.url(version.type, version.id, "_history", str(version.vid)),
    }


def version_response(ctx: Context, status: int, version: Version) -> FhirResponse:
    return FhirResponse(status, version.resource, version_headers(ctx, version), version)


def live(version: Version | None, what: str) -> Version:
    """`version` if it holds a resource: 404 when there is none, 410 when it is a deletion."""
    if version is None:
        raise not_found(f"{what} is not known")
    if version.deleted:
        raise gone(f"{what} is deleted")
    return version


async def current_resource(ctx: Context, resource_type: str, resource_id: str) -> Version:
    """The live current version of a resource the caller may see, else 404 or 410."""
    await check_visible(ctx, resource_type, resource_id)
    return live(await ctx.store.read(resource_type, resource_id, ctx.session), f"{resource_type}/{resource_id}")


async def check_visible(ctx: Context, resource_type: str, resource_id: str) -> None:
    """Refuse a resource that exists outside the caller's access (`ctx.access.restrict`): 404, so that
    nothing tells it exists, or 403 when `FHIR_HIDDEN_STATUS` says so. One that does not exist
    passes: the interaction answers as it does for anyone (and a write is checked as it is stored)."""
    if not await is_hidden(ctx, resource_type, resource_id):
        return
    if ctx.settings.hidden_status == 403:
        raise hidden_forbidden(resource_type, resource_id)
    raise not_found(f"{resource_type}/{resource_id} is not known")


def hidden_forbidden(resource_type: str, resource_id: str) -> FhirError:
    return FhirError(403, "forbidden", f"{resource_type}/{resource_id} is outside this access token's reach")


async def is_hidden(ctx: Context, resource_type: str, resource_id: str) -> bool:
    """Whether the resource exists (live or deleted) but lies outside the caller's access."""
    restriction = ctx.access.restrict(resource_type)
    if restriction is None:
        return False
    if await ctx.store.find(resource_type, {"$and": [{"_id": resource_id}, restriction]}, 1, ctx.session):
        return False
    return await ctx.store.read(resource_type, resource_id, ctx.session) is not None


async def visible_versions(ctx: Context, versions: list[Version]) -> list[Version]:
    """The versions (of any types) whose resource the caller may currently see."""
    by_type: dict[str, set[str]] = {}
    for version in versions:
        by_type.setdefault(version.type, set()).add(version.id)
    allowed: set[tuple[str, str]] = set()
    for resource_type, ids in by_type.items():
        restriction = ctx.access.restrict(resource_type)
        if restriction is None:
            allowed.update((resource_type, i) for i in ids)
            continue
        found = await ctx.store.find(resource_type, {"$and": [{"_id": {"$in": sorted(ids)}}, restriction]},
                                     len(ids), ctx.session)
        allowed.update((resource_type, v.id) for v in found)
    return [v for v in versions if (v.type, v.id) in allowed]


def accept_resource(body: object, resource_type: str, settings: Settings | None = None) -> Json:
    """The request body as a structurally valid resource of `resource_type`, else 400; 422 when it
    does not meet the profiles it claims or `settings` require."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a FHIR resource (a JSON object)")
    if body.get("resourceType") != resource_type:
        raise bad_request(
            f"resourceType '{body.get('resourceType')}' does not match the URL's type '{resource_type}'",
            "resourceType")
    check_valid(body, 400, settings)
    return body


def check_valid(resource: Json, status: int, settings: Settings | None = None) -> None:
    """Raise `status` with one issue per structural problem of `resource`, then 422 with one issue
    per violation of the profiles it claims or `settings` require."""
    issues = [i for i in validate_resource(resource) if i.severity in ("error", "fatal")]
    if issues:
        raise FhirError(status, issues[0].code, issues[0].diagnostics, issues=list(issues))
    enforce_profiles(resource, settings.required_profiles if settings else ())


def parse_version_tag(value: str, header: str) -> int:
    """`W/"3"`, `"3"` or `3` as the integer version; 400 when malformed."""
    tag = value.strip()
    tag = tag[2:] if tag.startswith("W/") else tag
    tag = tag.strip('"')
    if not tag.isdigit():
        raise bad_request(f"Malformed {header} header '{value}': expected W/\"<versionId>\"")
    return int(tag)


def not_modified(req: FhirRequest, version: Version) -> bool:
    """Whether `If-None-Match` / `If-Modified-Since` let the server answer 304."""
    if_none_match = req.headers.get("if-none-match")
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or any(parse_version_tag(t, "If-None-Match") == version.vid for t in tags)
    if_modified_since = req.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # RFC 9110: an invalid date is ignored
        return since.tzinfo is not None and version.ts.replace(microsecond=0) <= since
    return False
