"""Response Bundles: one response entry per request entry, in request order (http.html#transaction-response)."""

from __future__ import annotations

from http import HTTPStatus

from fhir_server.bundles.entries import Entry
from fhir_server.fhir.primitives import format_instant, new_id, now
from fhir_server.interactions.model import Context, FhirResponse, Json


def status_line(status: int) -> str:
    """`201 Created`: Bundle.entry.response.status."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def response_entry(ctx: Context, response: FhirResponse) -> Json:
    """The response entry for one performed request."""
    answer: Json = {"status": status_line(response.status)}
    if "Location" in response.headers:
        answer["location"] = response.headers["Location"]
    if "ETag" in response.headers:
        answer["etag"] = response.headers["ETag"]
    if response.version is not None:
        answer["lastModified"] = format_instant(response.version.ts)
    entry: Json = {}
    if response.status >= 400:
        answer["outcome"] = response.resource
    elif response.resource is not None:
        if response.version is not None and response.resource.get("resourceType") == response.version.type:
            entry["fullUrl"] = ctx.url(response.version.type, response.version.id)
        entry["resource"] = response.resource
    entry["response"] = answer
    return entry


def response_bundle(ctx: Context, kind: str, responses: list[FhirResponse]) -> Json:
    """A `batch-response` or `transaction-response` Bundle of `responses` (already in request order)."""
    return {"resourceType": "Bundle", "id": new_id(), "type": kind, "timestamp": format_instant(now()),
            "entry": [response_entry(ctx, r) for r in responses]}


def naming_entry(entry: Entry, response: FhirResponse) -> FhirResponse:
    """A failed entry's response as the failure of the whole transaction, each issue naming the entry."""
    outcome = dict(response.resource or {"resourceType": "OperationOutcome", "issue": []})
    outcome["issue"] = [{**issue, "diagnostics": f"{entry.description}: {issue.get('diagnostics', '')}",
                         "expression": [entry.label, *issue.get("expression", [])]}
                        for issue in outcome.get("issue", [])]
    return FhirResponse(response.status, outcome, {k: v for k, v in response.headers.items() if k == "Allow"})
