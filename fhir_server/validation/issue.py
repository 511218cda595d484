"""The `Issue` record every validator returns, shaped like an OperationOutcome issue."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Issue:
    """One validation problem.

    `code` is an OperationOutcome issue-type code ("structure", "required", "value", "invalid",
    "not-supported"...); `expression` the FHIRPath location of the problem, e.g.
    "Patient.name[0].given[1]" or "Observation.valueQuantity.value" (empty when the document as
    a whole is at fault: not an object, no or an unknown resourceType).
    """

    severity: str
    code: str
    diagnostics: str
    expression: str
