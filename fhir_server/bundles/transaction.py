"""Transaction Bundles: every entry in one database transaction, all or nothing (http.html#trules).

Entries are performed in the spec's order (DELETE, POST, PUT/PATCH, GET/HEAD) inside one MongoDB
transaction, each through `dispatch.perform` with the same context (access checks and audit per
entry). Before the first POST the targets of creates and updates are fixed (fresh ids for
creates, matches for conditional ones), so references between entries can be rewritten before
anything is written. Creates are staged and inserted together at the end of their phase. The
first failing entry aborts the transaction: its status and OperationOutcome, naming the entry,
answer the whole Bundle and nothing is persisted.
"""

from __future__ import annotations

from dataclasses import replace

from fhir_server.bundles.entries import PROCESSING_ORDER, Entry
from fhir_server.bundles.references import Identities, References
from fhir_server.bundles.responses import naming_entry, response_bundle
from fhir_server.fhir.outcome import FhirError, bad_request
from fhir_server.fhir.primitives import new_id
from fhir_server.interactions import conditional
from fhir_server.interactions.model import Context, FhirResponse
from fhir_server.interactions.routing import parse_route
from fhir_server.storage.database import WriteConflict
from fhir_server.storage.repository import PendingWrites

_POST, _PUT = PROCESSING_ORDER["POST"], PROCESSING_ORDER["PUT"]


class EntryFailed(Exception):
    """An entry failed: the transaction is rolled back and the Bundle answered with `response`."""

    def __init__(self, entry: Entry, response: FhirResponse) -> None:
        super().__init__(entry.description)
        self.entry = entry
        self.response = response


async def run_transaction(ctx: Context, entries: list[Entry]) -> FhirResponse:
    """Perform `entries` as one transaction; a `transaction-response` Bundle, or the failure."""
    _refuse_duplicate_urls(entries)
    try:
        responses = await ctx.transaction(lambda tx: _perform_all(replace(tx, pending=PendingWrites()), entries))
    except EntryFailed as failed:
        return naming_entry(failed.entry, failed.response)
    return FhirResponse(200, response_bundle(ctx, "transaction-response", responses))


async def _perform_all(tx: Context, entries: list[Entry]) -> list[FhirResponse]:
    # dispatch imports the interaction modules, this one among them.
    from fhir_server.interactions.dispatch import error_response, perform

    identities = Identities()
    references = References(identities)
    responses: dict[int, FhirResponse] = {}
    written: set[str] = set()
    phases = sorted({PROCESSING_ORDER[e.method] for e in entries} | {_POST})
    for phase in phases:
        if phase == _POST:
            await _fix_targets(tx, entries, identities)
        if phase == _PUT:  # one query per type instead of one per entry
            await tx.store.fetch_known(tx.session, tx.pending, [t for e in entries if (t := _instance(e, "PUT"))])
        for entry in (e for e in entries if PROCESSING_ORDER[e.method] == phase):
            try:
                response = await perform(tx, await references.request_for(tx, entry))
            except FhirError as error:
                raise EntryFailed(entry, error_response(error)) from error
            if response.status == 409:  # a concurrent writer: the whole transaction is retried
                raise WriteConflict(f"{entry.description} conflicted with a concurrent change")
            if response.status >= 400:
                raise EntryFailed(entry, response)
            _claim_target(entry, response, written)
            responses[entry.index] = response
        await tx.pending.flush(tx.database, tx.session)
    return [responses[e.index] for e in entries]


async def _fix_targets(tx: Context, entries: list[Entry], identities: Identities) -> None:
    """Choose what each create/update entry's fullUrl will stand for, before anything is created."""
    from fhir_server.interactions.dispatch import error_response

    for entry in entries:
        try:
            target = await _target(tx, entry)
        except FhirError as error:
            raise EntryFailed(entry, error_response(error)) from error
        if target is not None:
            identities.add(entry.full_url, target)


async def _target(tx: Context, entry: Entry) -> str | None:
    """The `Type/id` the entry creates or updates, where known before performing it."""
    if entry.method not in ("POST", "PUT", "PATCH"):
        return None
    route = parse_route(entry.method, entry.path)
    match route.interaction:
        case "create":
            criteria = entry.headers.get("if-none-exist")
            existing = conditional.single_match(
                await conditional.matches(tx, route.type, conditional.parse_criteria(criteria)), "create"
            ) if criteria else None
            if existing is not None:
                entry.assigned_id = None
                return f"{route.type}/{existing.id}"
            # Kept across retries of the transaction, so rewritten references stay valid.
            entry.assigned_id = entry.assigned_id or new_id()
            return f"{route.type}/{entry.assigned_id}"
        case "update" | "patch":
            return f"{route.type}/{route.id}"
        case "conditional-update":
            found = await conditional.matches(tx, route.type, conditional.require_criteria(entry.params))
            match = conditional.single_match(found, "update")
            if match is not None:
                return f"{route.type}/{match.id}"
            if not entry.body.get("id"):  # the id conditional update would choose, chosen now
                entry.body = {**entry.body, "id": new_id()}
            return f"{route.type}/{entry.body['id']}"
    return None


def _instance(entry: Entry, method: str) -> tuple[str, str] | None:
    """(type, id) of an entry `method [type]/[id]`, else None."""
    parts = entry.path.split("/")
    return (parts[0], parts[1]) if entry.method == method and len(parts) == 2 and not entry.params else None


def _refuse_duplicate_urls(entries: list[Entry]) -> None:
    seen: dict[str, Entry] = {}
    for entry in entries:
        keys = [f"fullUrl {entry.full_url}"] if entry.full_url else []
        if entry.method in ("PUT", "PATCH", "DELETE") and not entry.params:
            keys.append(f"target {entry.path}")
        for key in keys:
            if key in seen:
                raise bad_request(f"{entry.description} repeats the {key} of {seen[key].description}; "
                                  "a transaction may name each resource once", entry.label)
            seen[key] = entry


def _claim_target(entry: Entry, response: FhirResponse, written: set[str]) -> None:
    """Refuse a second change of one resource (conditional targets are known only now)."""
    version = response.version
    changed = entry.method in ("PUT", "PATCH", "DELETE") or response.status == 201
    if version is None or not changed:
        return
    key = f"{version.type}/{version.id}"
    if key in written:
        raise EntryFailed(entry, FhirResponse(400, bad_request(
            f"{key} is changed by more than one entry; a transaction may change each resource once").outcome))
    written.add(key)
