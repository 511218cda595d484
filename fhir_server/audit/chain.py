"""The tamper-evident chain: each AuditEvent carries its sequence number, the previous event's
hash and its own SHA-256 in one extension.

The hash covers the event's canonical JSON (keys sorted, no whitespace, UTF-8) without `meta`
(server bookkeeping) and without the hash itself, so editing any element of a stored event, or
removing or reordering events, breaks the chain at that point.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

Json = dict[str, Any]

CHAIN_URL = "https://medicalcycle.example/fhir/StructureDefinition/audit-chain"
GENESIS = "0" * 64


@dataclass(frozen=True)
class Link:
    """What an event's chain extension says about it."""

    sequence: int
    previous: str
    hash: str


def _without_hash(event: Json) -> Json:
    body = {k: v for k, v in event.items() if k != "meta"}
    body["extension"] = [
        {**ext, "extension": [part for part in ext["extension"] if part["url"] != "hash"]}
        if ext.get("url") == CHAIN_URL else ext
        for ext in event.get("extension", [])
    ]
    return body


def digest(event: Json) -> str:
    """SHA-256 (hex) of the event's canonical JSON, chain hash excluded."""
    return hashlib.sha256(orjson.dumps(_without_hash(event), option=orjson.OPT_SORT_KEYS)).hexdigest()


def seal(event: Json, sequence: int, previous: str) -> str:
    """Add the chain extension to `event` (in place) and return its hash."""
    extension = {"url": CHAIN_URL, "extension": [
        {"url": "sequence", "valueDecimal": sequence},
        {"url": "previous", "valueString": previous},
    ]}
    event.setdefault("extension", []).append(extension)
    event_hash = digest(event)
    extension["extension"].append({"url": "hash", "valueString": event_hash})
    return event_hash


def link_of(event: Json) -> Link | None:
    """The chain extension's values, or None when the event carries none (or a mangled one)."""
    for ext in event.get("extension", []):
        if ext.get("url") == CHAIN_URL:
            parts = {p.get("url"): next((v for k, v in p.items() if k.startswith("value")), None)
                     for p in ext.get("extension", [])}
            try:
                return Link(int(parts["sequence"]), str(parts["previous"]), str(parts["hash"]))
            except (KeyError, TypeError, ValueError):
                return None
    return None


def problem(event: Json | None, sequence: int, previous: str, recorded_hash: str) -> str | None:
    """Why the event at `sequence` does not continue the chain after `previous`, or None if it does."""
    if event is None:
        return f"event #{sequence} is missing"
    link = link_of(event)
    if link is None:
        return f"event #{sequence} ({event.get('id')}) has no valid chain extension"
    if link.sequence != sequence:
        return f"event #{sequence} ({event.get('id')}) claims sequence {link.sequence}"
    if link.previous != previous:
        return f"event #{sequence} ({event.get('id')}) does not follow the previous event's hash"
    actual = digest(event)
    if actual != link.hash or actual != recorded_hash:
        return f"event #{sequence} ({event.get('id')}) was altered: its content no longer matches its hash"
    return None
