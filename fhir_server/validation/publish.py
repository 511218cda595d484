"""Publishing the conformance resources we ship: stored at start-up so `/StructureDefinition`,
`/OperationDefinition` and `/ImplementationGuide` serve them like any resource (read by id, found
by `url`), and the canonical URLs the CapabilityStatement gives resolve on this server.

Idempotent: a resource is written only when the stored current version differs from the shipped
one (ignoring `meta`), so restarts add no versions and an upgrade adds exactly one.
"""

from __future__ import annotations

import copy
from typing import Any

import profiles
from fhir_server.storage import Database, ResourceStore

Json = dict[str, Any]


def shipped_resources() -> list[Json]:
    """The clinic's StructureDefinitions, our operations' OperationDefinitions and their ImplementationGuide."""
    return [*profiles.structure_definitions().values(), *profiles.operation_definitions().values(),
            profiles.implementation_guide()]


async def publish_profiles(database: Database, store: ResourceStore) -> int:
    """Store the shipped resources that are missing or changed; returns how many were written."""
    written = 0
    for resource in shipped_resources():
        resource_type, resource_id = resource["resourceType"], resource["id"]
        current = await store.read(resource_type, resource_id)
        if current is not None and not current.deleted and _without_meta(current.resource) == _without_meta(resource):
            continue
        stored = copy.deepcopy(resource)  # the store adds meta to what it is given
        await database.transaction(lambda session, r=stored: store.update(session, r["resourceType"], r["id"], r))
        written += 1
    return written


def _without_meta(resource: Json) -> Json:
    return {k: v for k, v in resource.items() if k != "meta"}
