"""The one exception the search engine raises for a bad search request.

Callers turn a `SearchError` into a 400 OperationOutcome; `param` names the offending
parameter so the message can point at it.
"""

from __future__ import annotations

from fhir_server.fhir.outcome import FhirError, bad_request


class SearchError(ValueError):
    """A search parameter or value the engine cannot accept (unknown modifier, malformed value...)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.param = param
        self.message = message


def bad_search(error: SearchError) -> FhirError:
    """The 400 OperationOutcome for `error`, naming its parameter."""
    name = error.param or "search"
    return bad_request(f"Search parameter '{name}': {error.message}", name)
