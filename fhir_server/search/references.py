"""Parsing of FHIR reference strings, shared by the path compiler and the reference indexer.

A reference is relative (`Patient/123`, `Patient/123/_history/2`), absolute
(`http://host/fhir/Patient/123`), contained (`#p1`) or a URN (`urn:uuid:...`). `split_reference`
returns its base URL (`""` when relative), type and id; `reference_type` is what
`where(resolve() is Patient)` tests, falling back to `Reference.type` when the string says nothing.
"""

from __future__ import annotations

import re
from functools import lru_cache

# [base/]Type/id[/_history/vid]; ids are [A-Za-z0-9\-\.]{1,64}.
_LITERAL = re.compile(r"^(?P<base>.*?/)??(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
                      r"(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


@lru_cache(maxsize=65536)
def split_reference(reference: str) -> tuple[str, str, str] | None:
    """`(base, type, id)` of a literal reference, base `""` when relative; None for `#x`, URNs..."""
    m = _LITERAL.match(reference)
    if m is None:
        return None
    return (m.group("base") or "").rstrip("/"), m.group("type"), m.group("id")


def reference_type(reference: dict) -> str | None:
    """The resource type a Reference points at, from its `reference` string or its `type`."""
    literal = reference.get("reference")
    if isinstance(literal, str) and (parts := split_reference(literal)):
        return parts[1]
    declared = reference.get("type")
    if isinstance(declared, str):
        return declared.rsplit("/", 1)[-1]
    return None
