"""Paging for history and search Bundles: `_count`, opaque keyset cursors and the Bundle links.

A cursor names the boundary item of the page already shown and the direction to go from it, so
pages stay correct while data changes (no skip/offset drift).
"""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import orjson

from fhir_server.fhir.outcome import bad_request
from fhir_server.interactions.model import Context, FhirRequest, Json

CURSOR_PARAM = "_cursor"


def page_size(ctx: Context, req: FhirRequest) -> int:
    """`_count`, defaulted and capped by the settings; 400 when not a non-negative integer."""
    return count_value(ctx, req.param("_count"))


def count_value(ctx: Context, raw: str | None) -> int:
    """A `_count` value (from the query or a Parameters body), defaulted and capped by the settings."""
    if raw is None:
        return ctx.settings.default_page_size
    if not raw.isdigit():
        raise bad_request(f"_count must be a non-negative integer, not '{raw}'", "_count")
    return min(int(raw), ctx.settings.max_page_size)


def encode_cursor(position: Json, backwards: bool) -> str:
    payload = orjson.dumps({"p": position, "b": backwards})
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(req: FhirRequest) -> tuple[Json, bool] | None:
    """The (position, backwards) a `_cursor` parameter carries; 400 when it was tampered with."""
    raw = req.param(CURSOR_PARAM)
    if raw is None:
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return dict(data["p"]), bool(data["b"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as error:
        raise bad_request(f"Invalid paging cursor '{raw}'", CURSOR_PARAM) from error


def page_url(ctx: Context, req: FhirRequest, params: list[tuple[str, str]], cursor: str | None = None) -> str:
    """The absolute URL of this request's path with `params` and an optional cursor."""
    kept = [(k, v) for k, v in params if k != CURSOR_PARAM]
    if cursor is not None:
        kept.append((CURSOR_PARAM, cursor))
    query = urlencode(kept)
    path = req.path.strip("/")
    return (ctx.url(path) if path else ctx.base_url) + (f"?{query}" if query else "")


def bundle_links(ctx: Context, req: FhirRequest, params: list[tuple[str, str]], *,
                 next_cursor: str | None, previous_cursor: str | None) -> list[Json]:
    """`self`, `first` and, where they exist, `next` and `previous` links."""
    links = [{"relation": "self", "url": page_url(ctx, req, params, req.param(CURSOR_PARAM))},
             {"relation": "first", "url": page_url(ctx, req, params)}]
    if next_cursor:
        links.append({"relation": "next", "url": page_url(ctx, req, params, next_cursor)})
    if previous_cursor:
        links.append({"relation": "previous", "url": page_url(ctx, req, params, previous_cursor)})
    return links
