"""The values interactions exchange: requests, responses, the parsed route and the context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from fhir_server.config import Settings
from fhir_server.storage import Database, ResourceStore, Session, Version
from fhir_server.storage.repository import PendingWrites, SideWrites

Json = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class FhirRequest:
    """One FHIR interaction request, from HTTP or from a Bundle entry."""

    method: str
    path: str
    """Relative to the base, without leading slash or query: `Patient/123/_history/2`."""
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-case names: `if-match`, `if-none-match`, `if-none-exist`, `if-modified-since`, `prefer`."""
    body: Any = None
    """The parsed JSON body: a resource, or a JSON Patch operation list."""
    assigned_id: str | None = None
    """For a create in a transaction Bundle: the id chosen up front, so references to it could be
    rewritten before it is written."""

    def param(self, name: str) -> str | None:
        """The last value of a query parameter (result parameters may be repeated by clients)."""
        values = [v for k, v in self.params if k == name]
        return values[-1] if values else None

    def prefer(self, key: str) -> str | None:
        """A token of the `Prefer` header, e.g. `return` -> `minimal`."""
        for part in self.headers.get("prefer", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == key:
                return value.strip().strip('"')
        return None


@dataclass
class FhirResponse:
    """The outcome of an interaction: HTTP status, body resource, headers and the version touched."""

    status: int
    resource: Json | None = None
    headers: dict[str, str] = field(default_factory=dict)
    version: Version | None = None
    touched: list[Version] = field(default_factory=list)
    """Every resource version the response discloses (search and history pages), for the audit."""
    stream: AsyncIterator[bytes] | None = None
    """A body that is not a resource (NDJSON exports), sent as it is produced, as `media_type`."""
    media_type: str | None = None


@dataclass(frozen=True)
class Route:
    """What a request path names: interaction code plus type, id, version, operation, compartment."""

    interaction: str
    type: str | None = None
    id: str | None = None
    vid: str | None = None
    operation: str | None = None
    compartment: str | None = None


class Access(Protocol):
    """What the caller may do and see (the auth package provides it from the bearer token)."""

    @property
    def principal(self) -> Any:
        """Who the caller is (user, client, token id, roles), for the audit; None: the server itself."""
        ...

    def require(self, code: str, resource_type: str | None) -> None:
        """Raise a 403 `FhirError` unless the caller may perform interaction `code` on `resource_type`.

        `dispatch.perform` calls it for every routed interaction (so also for each Bundle entry);
        operation handlers call it again for what they read or write.
        """
        ...

    def restrict(self, resource_type: str) -> Json | None:
        """A filter every query on `resource_type`'s collection must also satisfy; None: no limit."""
        ...

    def check_written(self, version: Version) -> None:
        """Raise a 403 `FhirError` if the caller may not store `version` or replace `version.replaced`
        (outside its patient's compartment or its scopes' restrictions); called inside the write's
        transaction, so the write is rolled back."""
        ...


class Unrestricted:
    """The access of the server itself and of unauthenticated deployments: everything."""

    principal = None

    def require(self, code: str, resource_type: str | None) -> None:
        return None

    def restrict(self, resource_type: str) -> Json | None:
        return None

    def check_written(self, version: Version) -> None:
        return None


UNRESTRICTED = Unrestricted()


class WriteTrail(Protocol):
    """Side writes recording each version an interaction stores; `written` lists them."""

    written: list[Version]

    def __call__(self, version: Version) -> list[tuple[str, Json]]: ...


class Auditor(Protocol):
    """Records the interactions of one request (the audit package provides it)."""

    def trail(self, route: Route) -> WriteTrail:
        """Side writes that record each version stored by an interaction on `route`."""
        ...

    async def record(self, req: FhirRequest, route: Route | None, response: FhirResponse,
                     touched: list[Version]) -> None:
        """Record an interaction that changed nothing (read, search, refusal, failure)."""
        ...

    def written(self) -> None:
        """A write committed: its records are in the outbox."""
        ...

    def record_documents(self, req: FhirRequest, route: Route | None, response: FhirResponse,
                         touched: list[Version]) -> list[tuple[str, Json]]:
        """Like `record`, as (collection, document) pairs the caller writes in its own transaction."""
        ...


@dataclass(frozen=True)
class Context:
    """What an interaction may use: settings, storage, the public base URL, the open session and
    the caller's access (which search, read, history and includes must honour)."""

    settings: Settings
    database: Database
    store: ResourceStore
    base_url: str
    session: Session | None = None
    access: Access = UNRESTRICTED
    auditor: Auditor | None = None
    side_writes: SideWrites | None = None
    """Documents to write with every stored version, in the same transaction (audit records)."""
    pending: PendingWrites | None = None
    """A transaction Bundle's staged creates, inserted together before its next phase."""

    def in_session(self, session: Session) -> Context:
        return replace(self, session=session)

    async def transaction(self, work: Callable[[Context], Awaitable[T]]) -> T:
        """Run `work` inside the open transaction (a transaction Bundle's), or in a new one."""
        if self.session is not None:
            return await work(self)
        return await self.database.transaction(lambda session: work(self.in_session(session)))

    def url(self, *parts: str) -> str:
        return "/".join([self.base_url, *parts])
