"""The one exception every patch format raises, and its two kinds."""

from __future__ import annotations

from typing import Literal

PatchErrorKind = Literal["invalid", "processing"]


class PatchError(Exception):
    """A patch document that is malformed or cannot be applied.

    `kind` is "invalid" for a malformed document (HTTP 400) and "processing" for a well-formed one
    that cannot be applied to this resource (HTTP 422). `expression` says where in the patch
    document the problem is: a FHIRPath into the Parameters resource for FHIRPath Patch
    (`Parameters.parameter[1]`), a JSON Pointer into the operation array for JSON Patch (`/1`).
    """

    def __init__(self, message: str, *, kind: PatchErrorKind, expression: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind: PatchErrorKind = kind
        self.expression = expression

    def __str__(self) -> str:
        return f"{self.expression}: {self.message}" if self.expression else self.message


def invalid(message: str, expression: str | None = None) -> PatchError:
    """A malformed patch document."""
    return PatchError(message, kind="invalid", expression=expression)


def unprocessable(message: str, expression: str | None = None) -> PatchError:
    """A well-formed patch that cannot be applied to this resource."""
    return PatchError(message, kind="processing", expression=expression)
