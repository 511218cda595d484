"""batch and transaction (`POST [base]` with a Bundle): checks the Bundle, then hands it to its processor.

Other Bundle types (document, collection, message...) are resources like any other: they are
stored with `POST /Bundle`, not processed here.
"""

from __future__ import annotations

from fhir_server.bundles.batch import run_batch
from fhir_server.bundles.entries import parse_entries
from fhir_server.bundles.size import transaction_bytes
from fhir_server.bundles.transaction import run_transaction
from fhir_server.fhir.outcome import FhirError, bad_request
from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route
from fhir_server.interactions.registry import interaction

PROCESSORS = {"batch": run_batch, "transaction": run_transaction}


@interaction("batch", "transaction")
async def bundle(ctx: Context, req: FhirRequest, route: Route) -> FhirResponse:
    body = req.body
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise bad_request("POST to the base takes a Bundle of type batch or transaction")
    kind = body.get("type")
    if kind not in PROCESSORS:
        raise bad_request(f"POST to the base takes a batch or transaction Bundle, not '{kind}'; "
                          "other Bundles are stored with POST /Bundle", "Bundle.type")
    count = len(body.get("entry") or [])
    limit = ctx.settings.max_bundle_entries
    if count > limit:
        raise FhirError(413, "too-costly", f"The Bundle has {count} entries; this server takes at most {limit} "
                        "(FHIR_MAX_BUNDLE_ENTRIES)", "Bundle.entry")
    if kind == "transaction":
        _refuse_oversized(body, ctx.settings.max_transaction_bytes)
    return await PROCESSORS[kind](ctx, parse_entries(body, ctx.base_url, req.headers.get("prefer")))


def _refuse_oversized(body: Json, limit: int) -> None:
    """413 before anything is done for a transaction too large to commit at once.

    All of a transaction's writes stay uncommitted in the database's cache until its commit; past
    what fits there, SecantusDB stalls for many minutes instead of failing. The resources' size
    as compact JSON is what those writes grow with (search indexes, history and audit records
    come on top of each). Batches commit entry by entry and need no such bound.
    """
    size = transaction_bytes(body)
    if size > limit:
        raise FhirError(413, "too-costly", f"The transaction's resources take {size} bytes as JSON; this server "
                        f"commits at most {limit} bytes in one transaction (FHIR_MAX_TRANSACTION_BYTES): "
                        "split it into several transactions, or send it as a batch", "Bundle.entry")
