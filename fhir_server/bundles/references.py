"""Resolving references in Bundle entries (http.html#trules, references.html#literal).

In a transaction, a reference to another entry's `fullUrl` (`urn:uuid:`, `urn:oid:`, or an
absolute URL, also reached as a relative `Type/id` from an entry on the same base) becomes the
`Type/id` that entry's resource gets; a `urn:` reference to no entry is an error. Conditional
references (`Patient?identifier=x|y`) become the one resource they match, in batches too; no
match or several is an error. References are found anywhere in a resource (nested elements,
contained resources, extensions): every object with a string `reference` is a Reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qsl

from fhir_server.bundles.entries import Entry
from fhir_server.definitions import resource_types
from fhir_server.fhir.outcome import FhirError, bad_request
from fhir_server.interactions import conditional
from fhir_server.interactions.model import Context, FhirRequest, Json

LOCAL_SCHEMES = ("urn:uuid:", "urn:oid:")
_TYPES = frozenset(resource_types())


def split_full_url(full_url: str) -> tuple[str, str] | None:
    """An absolute RESTful fullUrl `base/Type/id` as (base, `Type/id`); None for anything else."""
    if "://" not in full_url:
        return None
    parts = full_url.rstrip("/").rsplit("/", 2)
    if len(parts) != 3 or parts[1] not in _TYPES:
        return None
    return parts[0], f"{parts[1]}/{parts[2]}"


def base_of(full_url: str | None) -> str | None:
    """The base a relative reference in the entry with this fullUrl is read against, if it has one."""
    return (split_full_url(full_url) or (None, ""))[0] if full_url else None


class Identities:
    """What each entry's fullUrl stands for once the transaction has chosen its targets."""

    def __init__(self) -> None:
        self.targets: dict[str, str] = {}

    def add(self, full_url: str | None, target: str) -> None:
        if full_url:
            self.targets[full_url] = target

    def resolve(self, reference: str, base: str | None) -> str | None:
        """The `Type/id` an entry's `reference` names, when it names another entry."""
        found = self.targets.get(reference)
        if found is None and base is not None and "://" not in reference:
            found = self.targets.get(f"{base}/{reference}")
        return found


class References:
    """Rewrites the references of one Bundle's entries; conditional ones are looked up once."""

    def __init__(self, identities: Identities | None) -> None:
        self.identities = identities
        self.conditional: dict[str, str] = {}

    async def rewrite(self, ctx: Context, resource: Json, full_url: str | None) -> None:
        """Replace, in place, every reference in `resource` that names an entry or a search."""
        base = base_of(full_url)
        for holder in reference_holders(resource):
            reference = holder["reference"]
            if self.identities is not None:
                target = self.identities.resolve(reference, base)
                if target is not None:
                    holder["reference"] = target
                    continue
                if reference.startswith(LOCAL_SCHEMES):
                    raise bad_request(f"The reference '{reference}' names no entry of this transaction")
            if "?" in reference and reference.split("?", 1)[0] in _TYPES:
                holder["reference"] = await self._search(ctx, reference)

    async def request_for(self, ctx: Context, entry: Entry) -> FhirRequest:
        """The entry's request with its references resolved (on a copy: a retried transaction
        starts again from the entries as sent)."""
        body = entry.body
        if body is not None:
            body = copy_json(body)
            await self.rewrite(ctx, body, entry.full_url)
        return replace(entry.request(), body=body, params=self.rewrite_params(entry.params))

    def rewrite_params(self, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Search parameters with values naming an entry's fullUrl replaced by its `Type/id`."""
        if self.identities is None:
            return params
        return [(name, self.identities.resolve(value, None) or value) for name, value in params]

    async def _search(self, ctx: Context, reference: str) -> str:
        if reference not in self.conditional:
            resource_type, query = reference.split("?", 1)
            found = await conditional.matches(ctx, resource_type,
                                              conditional.require_criteria(parse_qsl(query, keep_blank_values=True)))
            if len(found) != 1:
                raise FhirError(412, "multiple-matches" if found else "not-found",
                                f"The conditional reference '{reference}' matches "
                                f"{'several resources' if found else 'no resource'}; it must match exactly one")
            self.conditional[reference] = f"{resource_type}/{found[0].id}"
        return self.conditional[reference]


def reference_holders(value: object) -> Iterator[Json]:
    """Every object under `value` holding a string `reference` (a Reference), depth first."""
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value
        for child in value.values():
            if isinstance(child, dict | list):
                yield from reference_holders(child)
    elif isinstance(value, list):
        for child in value:
            if isinstance(child, dict | list):
                yield from reference_holders(child)


def copy_json(value: object) -> object:
    """A deep copy of parsed JSON (Decimal numbers stay as they are)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value
