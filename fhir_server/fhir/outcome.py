"""OperationOutcome construction and the `FhirError` exception every layer raises.

An error anywhere below the HTTP adapter is a `FhirError` carrying the HTTP status and one or
more OperationOutcome issues; the adapter (or the Bundle processor) renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: severity, issue-type code, text and FHIRPath location."""

    severity: str
    code: str
    diagnostics: str
    expression: str | None = None

    def to_json(self) -> Json:
        issue: Json = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


def operation_outcome(issues: list[Issue]) -> Json:
    """An OperationOutcome resource holding `issues`."""
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def information(text: str) -> Json:
    """A one-issue informational OperationOutcome (`Prefer: return=OperationOutcome`, deletes)."""
    return operation_outcome([Issue("information", "informational", text)])


class FhirError(Exception):
    """A failed FHIR interaction: HTTP status plus the OperationOutcome issues explaining it."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        expression: str | None = None,
        *,
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.issues = issues or [Issue("error", code, diagnostics, expression)]
        self.headers = headers or {}

    @property
    def outcome(self) -> Json:
        return operation_outcome(self.issues)


def bad_request(diagnostics: str, expression: str | None = None, code: str = "invalid") -> FhirError:
    return FhirError(400, code, diagnostics, expression)


def not_found(diagnostics: str) -> FhirError:
    return FhirError(404, "not-found", diagnostics)


def gone(diagnostics: str) -> FhirError:
    return FhirError(410, "deleted", diagnostics)


def precondition_failed(diagnostics: str) -> FhirError:
    return FhirError(412, "conflict", diagnostics)


def unprocessable(diagnostics: str, expression: str | None = None, code: str = "processing") -> FhirError:
    return FhirError(422, code, diagnostics, expression)
