"""What a token grants (`Grant`) and how an authorization request's scopes are narrowed to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server.auth.accounts import Account
from fhir_server.auth.clients import Client
from fhir_server.auth.roles import role
from fhir_server.auth.scopes import Scope, narrow_all, parse_ceiling, scope_text, split_scopes


@dataclass(frozen=True)
class Grant:
    """Who is granted what: the contents of an access token (and of the refresh token behind it)."""

    client_id: str
    words: tuple[str, ...]
    """Non-resource scopes granted (`openid`, `fhirUser`, `launch/patient`, `offline_access`...)."""
    scopes: tuple[Scope, ...]
    username: str | None = None
    fhir_user: str | None = None
    roles: tuple[str, ...] = ()
    patient: str | None = None
    encounter: str | None = None
    fhir_context: list = field(default_factory=list)
    need_patient_banner: bool = False

    @property
    def scope(self) -> str:
        return scope_text(list(self.words), list(self.scopes))

    @property
    def subject(self) -> str:
        return self.username or self.client_id

    def to_doc(self) -> dict:
        return {"client_id": self.client_id, "scope": self.scope, "username": self.username,
                "fhir_user": self.fhir_user, "roles": list(self.roles), "patient": self.patient,
                "encounter": self.encounter, "fhir_context": self.fhir_context,
                "need_patient_banner": self.need_patient_banner}

    @classmethod
    def from_doc(cls, doc: dict) -> Grant:
        words, scopes = split_scopes(doc["scope"])
        return cls(doc["client_id"], tuple(words), tuple(scopes), doc.get("username"), doc.get("fhir_user"),
                   tuple(doc.get("roles") or ()), doc.get("patient"), doc.get("encounter"),
                   doc.get("fhir_context") or [], bool(doc.get("need_patient_banner")))


def user_grant(requested: str, client: Client, account: Account) -> tuple[list[str], list[Scope]]:
    """The scopes a user's token gets: request ∩ client registration ∩ the user's role ceiling."""
    words, scopes = split_scopes(requested)
    registered_words, _ = split_scopes(client.scope)
    user_role = role(account.role)
    scopes = [s for s in scopes if s.context in ("patient", "user")]
    scopes = narrow_all(narrow_all(scopes, parse_ceiling(client.scope)), list(user_role.ceiling))
    return [w for w in words if w in registered_words], scopes


def backend_grant(requested: str, client: Client) -> list[Scope]:
    """A Backend Services token's scopes: the `system/` scopes asked for ∩ the registration."""
    _, scopes = split_scopes(requested)
    return narrow_all([s for s in scopes if s.context == "system"], parse_ceiling(client.scope))


def needs_patient(scopes: list[Scope] | tuple[Scope, ...]) -> bool:
    return any(s.context == "patient" for s in scopes)
