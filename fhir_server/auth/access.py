"""What a verified access token may do on the FHIR API: the `Access` the interactions consult.

- `require(code, type)`: the interaction's permission letter (`scopes.INTERACTION_LETTERS`) must
  be granted on the type, else 403;
- `restrict(type)`: the MongoDB filter limiting what the caller sees of a type: the patient's
  compartment (`sp.@compartment`) for `patient/` scopes, AND the compiled `?param=value`
  restrictions of v2 scopes; the OR of that over the scopes reading the type;
- `check_written(version)`: a version the caller stores, and the version it replaces, must each
  lie within the reach of a scope granting the write's letter (c, u or d): the same filter as
  for reads (compartment AND restriction), evaluated in Python on the resource's stored form
  (`search.matcher`); else 403 and the transaction is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.auth.scopes import INTERACTION_LETTERS, Scope, split_scopes
from fhir_server.fhir.outcome import FhirError
from fhir_server.search import compartments
from fhir_server.search.errors import SearchError
from fhir_server.search.matcher import UnsupportedFilter, matches, stored_form
from fhir_server.search.plan import compile_query
from fhir_server.search.query import parse_query
from fhir_server.storage import Version

Json = dict[str, Any]
NOTHING: Json = {"_id": {"$in": []}}
"""A filter no document matches: the type is out of reach."""
_READING = "rs"
_WRITE_LETTERS = {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}
_VERBS = {"c": "create", "u": "update", "d": "delete"}


@dataclass(frozen=True)
class Principal:
    """Who calls, for the audit trail: the user (if any), the client, the token."""

    sub: str
    client_id: str
    jti: str
    scopes: str
    username: str | None = None
    fhir_user: str | None = None
    roles: tuple[str, ...] = ()
    patient: str | None = None


def principal_from(claims: dict) -> Principal:
    return Principal(claims["sub"], claims.get("client_id", ""), claims["jti"], claims["scope"],
                     claims.get("username"), claims.get("fhirUser"), tuple(claims.get("roles") or ()),
                     claims.get("patient"))


@cache
def _restriction_filter(resource_type: str, params: tuple[tuple[str, str], ...]) -> Json:
    """The filter of a v2 `?param=value` restriction, compiled by the search engine.

    A restriction the engine cannot express as one filter on the type (a chain, `_has`, an
    unknown parameter) grants nothing rather than everything.
    """
    try:
        plan = compile_query(parse_query(resource_type, list(params), strict=True))
    except (SearchError, FhirError, ValueError):
        return NOTHING
    return NOTHING if plan.pending or plan.alternatives else plan.filter


def _reaches(filters: list[Json], resource_type: str, resource: Json, index: Json | None = None) -> bool:
    """Whether `resource` matches any of the scope filters, as the database would match it stored.

    A filter the evaluator does not understand counts as not matching: the write is refused
    rather than let through on a guess.
    """
    if not filters:
        return False
    document = stored_form(resource_type, resource, index)
    for scope_filter in filters:
        try:
            if matches(scope_filter, document):
                return True
        except UnsupportedFilter:
            continue
    return False


class TokenAccess:
    """The `Access` of a request carrying a valid access token."""

    def __init__(self, claims: dict) -> None:
        self.principal = principal_from(claims)
        _, scopes = split_scopes(claims["scope"])
        self.patient: str | None = claims.get("patient")
        self.scopes: tuple[Scope, ...] = tuple(scopes)

    def _scopes_for(self, resource_type: str | None) -> list[Scope]:
        return [s for s in self.scopes if resource_type is None or s.covers_type(resource_type)]

    def require(self, code: str, resource_type: str | None) -> None:
        letter = INTERACTION_LETTERS.get(code)
        scopes = self._scopes_for(resource_type)
        if code == "operation":
            granted = bool(scopes)
        else:
            granted = letter is None or any(letter in s.permissions for s in scopes)
        if not granted:
            what = f"{code} on {resource_type}" if resource_type else code
            raise FhirError(403, "forbidden", f"The access token's scopes do not permit {what}")

    def restrict(self, resource_type: str) -> Json | None:
        filters = []
        for scope in self._scopes_for(resource_type):
            if not any(x in scope.permissions for x in _READING):
                continue
            scope_filter = self._scope_filter(scope, resource_type)
            if scope_filter is None:
                return None
            filters.append(scope_filter)
        if not filters:
            return NOTHING
        return filters[0] if len(filters) == 1 else {"$or": filters}

    def check_written(self, version: Version) -> None:
        letter = _WRITE_LETTERS[version.method]
        filters = []
        for scope in self._scopes_for(version.type):
            if letter not in scope.permissions:
                continue
            scope_filter = self._scope_filter(scope, version.type)
            if scope_filter is None:
                return
            filters.append(scope_filter)
        # The replaced version too: a restricted scope must not reach a resource outside its
        # restriction by rewriting (or deleting) it.
        if version.replaced is not None and not _reaches(filters, version.type, version.replaced):
            raise FhirError(403, "forbidden", f"{version.type}/{version.id} lies outside what this access "
                            f"token's scopes may {_VERBS[letter]}")
        if version.resource is not None and not _reaches(filters, version.type, version.resource, version.index):
            raise FhirError(403, "forbidden", f"{version.type}/{version.id} would lie outside what this "
                            f"access token's scopes may {_VERBS[letter]}")

    def _scope_filter(self, scope: Scope, resource_type: str) -> Json | None:
        parts = []
        if scope.context == "patient":
            if not self.patient:
                return NOTHING
            parts.append({f"sp.{compartments.KEY}": f"Patient/{self.patient}"})
        if scope.params:
            parts.append(_restriction_filter(resource_type, scope.params))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}
