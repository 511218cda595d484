"""The size of a transaction as `FHIR_MAX_TRANSACTION_BYTES` bounds it: its resources as compact JSON.

The server refuses a larger transaction (`interactions.bundle`) and `fhir-server import` splits one
(`importing.splitting`) by this same measure, so a split transaction's parts are never refused.
"""

from __future__ import annotations

from fhir_server.fhir import json as fhir_json
from fhir_server.interactions.model import Json


def entry_bytes(entry: object) -> int:
    """The bytes of a Bundle entry's resource written as compact JSON; 0 for an entry without one."""
    if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
        return len(fhir_json.dumps(entry["resource"]))
    return 0


def transaction_bytes(bundle: Json) -> int:
    """The bytes of all the resources of a Bundle's entries as compact JSON."""
    return sum(entry_bytes(e) for e in bundle.get("entry") or [])
