"""Finding the resources that conditional create, update, delete and patch apply to.

Also serialises concurrent conditional writes with the same criteria: each one writes a lock
document keyed by the criteria inside its transaction, so two racing `If-None-Exist` creates
conflict and the retried one sees the other's resource instead of creating a duplicate.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from fhir_server.fhir.outcome import FhirError, bad_request
from fhir_server.interactions.model import Context
from fhir_server.search.errors import SearchError, bad_search
from fhir_server.search.plan import compile_query
from fhir_server.search.query import parse_query
from fhir_server.search.runner import Runner
from fhir_server.storage import Version

LOCKS = "conditional_locks"


def parse_criteria(query: str) -> list[tuple[str, str]]:
    """An If-None-Exist value such as `identifier=a|b&_id=x` as (name, value) pairs."""
    return require_criteria(parse_qsl(query.lstrip("?"), keep_blank_values=True))


def require_criteria(criteria: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The criteria of a conditional interaction; 400 when there are none."""
    if not criteria:
        raise bad_request("A conditional interaction needs search criteria")
    return criteria


async def matches(ctx: Context, resource_type: str, criteria: list[tuple[str, str]]) -> list[Version]:
    """Up to two current resources matching `criteria` (two is enough to tell 'many').

    Any search criteria work (chains, `_has`, modifiers...). Unknown parameters are refused
    rather than ignored: ignoring one would widen the match and change the wrong resource.
    The caller's access restriction applies, so nothing outside it is found or changed.
    """
    key = f"{resource_type}?{urlencode(sorted(criteria))}"
    locks = ctx.database.collection(LOCKS)
    await locks.update_one({"_id": key}, {"$inc": {"n": 1}}, upsert=True, session=ctx.session)
    await locks.delete_one({"_id": key}, session=ctx.session)
    try:
        query = parse_query(resource_type, criteria, strict=True)
        found = await Runner(ctx.database, ctx.access.restrict, ctx.session).filter(compile_query(query))
    except SearchError as error:
        raise bad_search(error) from error
    return await ctx.store.find(resource_type, found, 2, ctx.session)


def single_match(found: list[Version], what: str) -> Version | None:
    """The one match, None for no match, 412 for several (the spec's rule for every conditional)."""
    if len(found) > 1:
        raise FhirError(412, "multiple-matches", f"The criteria of this conditional {what} match several resources")
    return found[0] if found else None
