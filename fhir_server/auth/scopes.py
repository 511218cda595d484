"""SMART scopes, v1 (`patient/Observation.read`, `user/*.write`) and v2 (`.cruds`, `?param=value`).

A `Scope` is one resource scope normalised to v2 permission letters. `narrow` intersects what a
client asks for with a ceiling (the client's registration, a role), which is how a token never
exceeds the intersection of request, registration and role. Non-resource scopes (`openid`,
`fhirUser`, `launch`, `launch/patient`, `offline_access`...) are kept as plain words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

LETTERS = "cruds"
CONTEXTS = ("patient", "user", "system")
ANY_CONTEXT = "*"
"""A ceiling context matching every requested context (roles use it)."""
_V1 = {"read": "rs", "write": "cud", "*": LETTERS}
_SCOPE = re.compile(r"(patient|user|system|\*)/(\*|[A-Z][A-Za-z]*)\.(read|write|\*|c?r?u?d?s?)(?:\?(.*))?")

# Interaction codes (as the router names them) to the permission letter they need.
INTERACTION_LETTERS = {
    "create": "c",
    "read": "r", "vread": "r", "history-instance": "r",
    "update": "u", "patch": "u", "conditional-update": "u", "conditional-patch": "u",
    "delete": "d", "conditional-delete": "d",
    "search-type": "s", "search-system": "s", "search-compartment": "s",
    "history-type": "s", "history-system": "s",
}
"""`capabilities`, `batch` and `transaction` need no letter (entries are checked one by one);
an `operation` needs some permission on its type and its handler checks what it reads or writes."""

NAMED_ONLY_TYPES = frozenset({"AuditEvent"})
"""Types no `*` scope or ceiling covers: only a scope naming the type reaches it (issue 6: the audit
trail is for auditors, not for every full-access token)."""

NON_RESOURCE_SCOPES = ("openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
                       "offline_access", "online_access")


class ScopeError(ValueError):
    """A scope string that is not a SMART scope."""


@dataclass(frozen=True)
class Scope:
    """One resource scope: context, resource type (or `*`), permission letters, v2 restrictions."""

    context: str
    resource_type: str
    permissions: str
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        text = f"{self.context}/{self.resource_type}.{self.permissions}"
        return f"{text}?{urlencode(self.params)}" if self.params else text

    def covers_type(self, resource_type: str | None) -> bool:
        if self.resource_type == "*":
            return resource_type not in NAMED_ONLY_TYPES
        return self.resource_type == resource_type


def parse_scope(text: str) -> Scope | None:
    """The resource scope `text` names; None for a non-resource scope; `ScopeError` if malformed."""
    if text in NON_RESOURCE_SCOPES or not text:
        return None
    match = _SCOPE.fullmatch(text)
    if match is None or not match.group(3):
        raise ScopeError(f"'{text}' is not a SMART scope")
    context, resource_type, permissions, query = match.groups()
    letters = _V1.get(permissions, permissions)
    params = tuple(sorted(parse_qsl(query, keep_blank_values=False))) if query else ()
    if query and permissions in _V1:
        raise ScopeError(f"'{text}': ?param=value restrictions need v2 permission letters")
    return Scope(context, resource_type, letters, params)


def split_scopes(text: str) -> tuple[list[str], list[Scope]]:
    """The words of a scope string: (non-resource scopes, resource scopes); unknown words are dropped.

    RFC 6749: the server may grant fewer scopes than asked; it answers with what it granted.
    """
    words: list[str] = []
    resources: list[Scope] = []
    for word in dict.fromkeys(text.split()):
        try:
            scope = parse_scope(word)
        except ScopeError:
            continue
        if scope is None:
            if word in NON_RESOURCE_SCOPES:
                words.append(word)
        else:
            resources.append(scope)
    return words, resources


def narrow(requested: Scope, ceilings: list[Scope]) -> list[Scope]:
    """The parts of `requested` that some ceiling allows (each intersection is itself a scope)."""
    granted = []
    for ceiling in ceilings:
        if ceiling.context not in (ANY_CONTEXT, requested.context):
            continue
        if requested.resource_type == "*":
            resource_type = ceiling.resource_type
        elif ceiling.covers_type(requested.resource_type):
            resource_type = requested.resource_type
        else:
            continue
        letters = "".join(letter for letter in LETTERS
                          if letter in requested.permissions and letter in ceiling.permissions)
        if letters:
            params = tuple(sorted(set(requested.params) | set(ceiling.params)))
            granted.append(Scope(requested.context, resource_type, letters, params))
    return granted


def narrow_all(requested: list[Scope], ceilings: list[Scope]) -> list[Scope]:
    """Every requested scope narrowed by `ceilings`, without duplicates."""
    return list(dict.fromkeys(s for r in requested for s in narrow(r, ceilings)))


def scope_text(words: list[str], scopes: list[Scope]) -> str:
    return " ".join([*words, *(str(s) for s in scopes)])


def parse_ceiling(text: str) -> list[Scope]:
    """A registered scope list (client registration, role table) as resource scopes; malformed: error."""
    scopes = []
    for word in text.split():
        scope = parse_scope(word)
        if scope is not None:
            scopes.append(scope)
    return scopes
