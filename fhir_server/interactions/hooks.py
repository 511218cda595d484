"""Per-type hooks on writes, for packages whose state follows stored resources of one type.

`check(type, fn)` registers `fn(resource)` to run on a request body before it is written (raise
a `FhirError` to refuse it); `written(type, fn)` registers `fn(database, version)` to run after
a write of that type to `database` succeeded (deletes included: `version.deleted`). `dispatch.perform` calls them for
every write interaction, standalone or inside a Bundle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_server.storage import Database, Version

Json = dict[str, Any]
_CHECKS: dict[str, list[Callable[[Json], None]]] = {}
_WRITTEN: dict[str, list[Callable[[Database, Version], None]]] = {}


def check(resource_type: str, fn: Callable[[Json], None]) -> None:
    """Run `fn` on every `resource_type` body about to be created or updated."""
    _CHECKS.setdefault(resource_type, []).append(fn)


def written(resource_type: str, fn: Callable[[Database, Version], None]) -> None:
    """Run `fn` on the database and every version of `resource_type` a write stored there."""
    _WRITTEN.setdefault(resource_type, []).append(fn)


def before_write(resource_type: str | None, body: object) -> None:
    if resource_type and isinstance(body, dict) and body.get("resourceType") == resource_type:
        for fn in _CHECKS.get(resource_type, ()):
            fn(body)


def after_write(database: Database, version: Version | None) -> None:
    if version is not None:
        for fn in _WRITTEN.get(version.type, ()):
            fn(database, version)
