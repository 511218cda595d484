"""The `Issue` record validators return: the OperationOutcome issue of `fhir_server.fhir.outcome`."""

from fhir_server.fhir.outcome import Issue

__all__ = ["Issue"]
