"""Extended operations (`$name`, hl7.org/fhir/R4/operations.html).

`registry` holds the operations by name, level and resource type; each operation lives in its own
module, listed in `MODULES`, and registers itself with `@operation`. The `operation` interaction
(`interactions/operation.py`) routes `[base]/$name`, `[type]/$name` and `[type]/[id]/$name` here.
An operation handler checks what it reads or writes with `ctx.access.require(...)`, as the
interactions it is made of would.
"""

from __future__ import annotations

import importlib

# Modules defining operations; importing one registers its operations.
MODULES: list[str] = [
    "fhir_server.audit.operations",
    "fhir_server.search.operations",
    "fhir_server.operations.validate",
    "fhir_server.prescriptions.dispense",
    "fhir_server.operations.patient_everything",
]


def load_operations() -> None:
    """Import every operation module (idempotent)."""
    for module in MODULES:
        importlib.import_module(module)
