"""Queries an operation runs on the caller's behalf, limited to what the caller may see."""

from __future__ import annotations

from fhir_server.interactions.model import Context, Json


def visible(ctx: Context, resource_type: str, query: Json) -> Json:
    """`query` narrowed by `ctx.access.restrict(resource_type)`."""
    restriction = ctx.access.restrict(resource_type)
    return {"$and": [query, restriction]} if restriction else query
