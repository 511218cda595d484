"""Custom SearchParameter resources: the search registry follows the stored ones in every process.

A SearchParameter written over the API is checked before it is stored (it must name a url,
code, type and known base types, and its expression must be valid FHIRPath), then registered
in the search registry; deleting it unregisters it. Values of existing resources are indexed
for a new parameter by `$reindex`.

Every server process holds its own registry, and another process may change the stored
SearchParameters at any time. The `Follower` of a database registers the stored ones at
start-up (`sync`) and then, at most every `FHIR_SEARCH_PARAMETER_REFRESH_SECONDS` (0: on every
request), `refresh` counts the SearchParameter entries of the history: every write stores one
in its own transaction and none is ever removed, so a different count means some change was
committed, and the registry is synced again from the stored resources (new ones added, changed
ones replaced, deleted ones removed). The process that writes applies its change at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from weakref import WeakKeyDictionary

from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models
from pymongo.errors import PyMongoError

from fhir_server.definitions import resource_types
from fhir_server.fhir.outcome import unprocessable
from fhir_server.interactions import hooks
from fhir_server.interactions.model import Json
from fhir_server.search.registry import MODIFIERS, registry
from fhir_server.storage import Database, Version

log = logging.getLogger(__name__)
TYPE = "SearchParameter"
_BASES = frozenset({"Resource", "DomainResource"})


def check_definition(resource: Json) -> None:
    """422 unless `resource` is a SearchParameter this server can evaluate."""
    for element in ("url", "code", "type"):
        if not isinstance(resource.get(element), str):
            raise unprocessable(f"A SearchParameter needs {element} to be searchable", f"SearchParameter.{element}")
    if resource["type"] not in MODIFIERS or resource["type"] == "special":
        raise unprocessable(f"Search parameters of type {resource['type']!r} are not supported",
                            "SearchParameter.type")
    unknown = [b for b in resource.get("base") or [] if b not in resource_types() and b not in _BASES]
    if unknown or not resource.get("base"):
        raise unprocessable(f"SearchParameter.base must list resource types, not {unknown or 'nothing'}",
                            "SearchParameter.base")
    expression = resource.get("expression")
    if resource["type"] != "composite" and not isinstance(expression, str):
        raise unprocessable("A SearchParameter needs an expression to be searchable", "SearchParameter.expression")
    try:
        if expression:
            # fhirpathpy's parser is lenient: most syntax errors only show when evaluated.
            evaluate = compile_fhirpath(expression, models["r4"])
            for base in resource["base"]:
                evaluate({"resourceType": base if base not in _BASES else "Patient"})
    except Exception as error:  # fhirpathpy raises bare exceptions for syntax errors
        raise unprocessable(f"SearchParameter.expression is not valid FHIRPath: {error}",
                            "SearchParameter.expression") from error


def _usable(resource: Json) -> bool:
    try:
        check_definition(resource)
    except Exception:
        return False
    return resource.get("status") != "retired"


class Follower:
    """Keeps the registry's custom parameters in step with the SearchParameters `database` stores.

    One per database rather than per process: the test suite runs servers on several databases
    in one process, and each must only add and remove the parameters of its own.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._stored: dict[str, tuple[int | None, str | None]] = {}
        """Resource id -> (version, the url registered for it or None if unusable): a delete carries
        no resource to read the url from, and a sync skips the versions it already has. The version
        is None when this process wrote it: the write may yet be rolled back, the next sync decides."""
        self._seen: int | None = None
        """The count of SearchParameter history entries the registry reflects; None: sync at the next refresh."""
        self._applied = 0
        """Versions applied so far: a sync that saw one applied while it read the database starts over."""
        self._checked = -math.inf
        """When `refresh` last checked (`time.monotonic()`)."""
        self._lock = asyncio.Lock()

    def apply(self, version: Version) -> None:
        """Register, replace or unregister the parameter a write of this process stored."""
        self._applied += 1
        # Inside a transaction Bundle a write is applied before the commit, which may yet fail:
        # the next refresh syncs with what was stored.
        self._seen = None
        self._set(version.id, None, version.resource)

    def _set(self, resource_id: str, vid: int | None, resource: Json | None) -> None:
        previous = self._stored.pop(resource_id, None)
        if previous is not None and previous[1] is not None:
            with contextlib.suppress(KeyError):  # already gone
                registry().unregister(previous[1])
        if resource is None:
            return
        usable = _usable(resource)
        if usable:
            registry().register(resource)
        self._stored[resource_id] = (vid, resource["url"] if usable else None)

    async def refresh(self, interval: float) -> None:
        """Sync if the stored SearchParameters changed, checking at most every `interval` seconds.

        Never raises for the database: when it cannot be read the registry stays as it was and
        the check is repeated after `interval`.
        """
        if time.monotonic() - self._checked < interval:
            return
        self._checked = time.monotonic()
        try:
            if await self._count() != self._seen:
                await self.sync()
        except PyMongoError as error:
            log.warning("custom search parameters not refreshed, the database is unavailable: %s", error)

    async def sync(self) -> None:
        """Make the registry hold exactly the stored, live SearchParameters; logs how many."""
        async with self._lock:
            while True:
                applied = self._applied
                count = await self._count()  # before the reads: a change committed meanwhile is seen next time
                cursor = self.database.resources(TYPE).find({"del": {"$exists": False}}, {"vid": 1, "res": 1})
                stored = {doc["_id"]: doc async for doc in cursor}
                if applied == self._applied:
                    break
            changed = [(gone, None, None) for gone in self._stored.keys() - stored.keys()]
            changed += [(i, doc["vid"], doc["res"]) for i, doc in stored.items()
                        if i not in self._stored or self._stored[i][0] != doc["vid"]]
            for resource_id, vid, resource in changed:
                self._set(resource_id, vid, resource)
            self._seen = count
        if changed:
            log.info("custom search parameters synced: %d changed, %d registered", len(changed),
                     sum(url is not None for _, url in self._stored.values()))

    async def _count(self) -> int:
        return await self.database.history.count_documents({"t": TYPE})


_FOLLOWERS: WeakKeyDictionary[Database, Follower] = WeakKeyDictionary()


def follower(database: Database) -> Follower:
    """The `Follower` of `database` (one per database, made on first use)."""
    if database not in _FOLLOWERS:
        _FOLLOWERS[database] = Follower(database)
    return _FOLLOWERS[database]


hooks.check(TYPE, check_definition)
hooks.written(TYPE, lambda database, version: follower(database).apply(version))
