"""The table of extended operations: name -> where it applies and its handler.

The CapabilityStatement lists exactly these, with the canonical URL of each OperationDefinition.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from fhir_server.interactions.model import Context, FhirRequest, FhirResponse, Json, Route

Handler = Callable[[Context, FhirRequest, Route], Awaitable[FhirResponse]]
LEVELS = frozenset({"system", "type", "instance"})


@dataclass(frozen=True)
class Operation:
    name: str
    """Without the `$`."""
    handler: Handler
    levels: frozenset[str]
    types: frozenset[str] | None
    """The resource types it applies to at type and instance level; None: every type."""
    affects_state: bool
    """Changes data: only POST may invoke it (GET is refused with 405)."""
    definition: str | None
    """The canonical URL of its OperationDefinition."""

    def applies(self, level: str, resource_type: str | None) -> bool:
        if level not in self.levels:
            return False
        return level == "system" or self.types is None or resource_type in self.types


OPERATIONS: dict[str, list[Operation]] = {}


def operation(name: str, *, levels: Iterable[str], types: Iterable[str] | None = None,
              affects_state: bool = False, definition: str | None = None) -> Callable[[Handler], Handler]:
    """Register the decorated function as operation `$name` at `levels` (system, type, instance)."""
    levels = frozenset(levels)
    if not levels <= LEVELS:
        raise ValueError(f"unknown operation levels {sorted(levels - LEVELS)}")

    def register(handler: Handler) -> Handler:
        OPERATIONS.setdefault(name, []).append(Operation(
            name, handler, levels, frozenset(types) if types is not None else None, affects_state, definition))
        return handler

    return register


def find(name: str, level: str, resource_type: str | None) -> Operation | None:
    """The operation `$name` registered for `level` and `resource_type`, if any."""
    return next((op for op in OPERATIONS.get(name, []) if op.applies(level, resource_type)), None)


def capability_entries(level: str, resource_type: str | None = None) -> list[Json]:
    """CapabilityStatement `operation` entries for `level` (and type)."""
    # Two operations may share a name on different types: each entry names the one that applies.
    applying = ((name, find(name, level, resource_type)) for name in sorted(OPERATIONS))
    return [{"name": name, "definition": op.definition} for name, op in applying if op and op.definition]
