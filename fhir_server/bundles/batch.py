"""Batch Bundles: each entry performed on its own, in order; one failing does not affect the others.

References between entries are not resolved (http.html#brules); conditional references are.
"""

from __future__ import annotations

from fhir_server.bundles.entries import Entry
from fhir_server.bundles.references import References
from fhir_server.bundles.responses import response_bundle
from fhir_server.fhir.outcome import FhirError
from fhir_server.interactions.model import Context, FhirResponse


async def run_batch(ctx: Context, entries: list[Entry]) -> FhirResponse:
    """Perform `entries` independently; a `batch-response` Bundle with an answer for each."""
    # dispatch imports the interaction modules, this one among them.
    from fhir_server.interactions.dispatch import error_response, perform

    references = References(None)
    responses = []
    for entry in entries:
        try:
            request = await references.request_for(ctx, entry)
        except FhirError as error:
            responses.append(error_response(error))
            continue
        responses.append(await perform(ctx, request))
    return FhirResponse(200, response_bundle(ctx, "batch-response", responses))
