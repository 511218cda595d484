"""SMART scope grammar (v1 and v2) and the narrowing that keeps tokens within their ceilings."""

from __future__ import annotations

import pytest

from fhir_server.auth.scopes import Scope, ScopeError, narrow, narrow_all, parse_ceiling, parse_scope, split_scopes


@pytest.mark.parametrize(("text", "expected"), [
    ("patient/Observation.read", Scope("patient", "Observation", "rs")),
    ("user/*.write", Scope("user", "*", "cud")),
    ("system/*.*", Scope("system", "*", "cruds")),
    ("patient/Observation.rs", Scope("patient", "Observation", "rs")),
    ("user/Patient.cruds", Scope("user", "Patient", "cruds")),
    ("patient/Observation.rs?category=laboratory", Scope("patient", "Observation", "rs",
                                                          (("category", "laboratory"),))),
])
def test_parse(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize("text", ["patient/Observation.sr", "patient/observation.rs", "nurse/*.rs",
                                  "patient/Observation.", "patient/Observation.read?category=x", "*.*x"])
def test_malformed(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_non_resource_scopes_and_unknown_words() -> None:
    words, scopes = split_scopes("openid fhirUser launch/patient bogus patient/*.rs patient/*.rs")
    assert words == ["openid", "fhirUser", "launch/patient"]
    assert scopes == [Scope("patient", "*", "rs")]


def test_narrowing_intersects_letters_types_and_restrictions() -> None:
    ceiling = parse_ceiling("*/*.rs */Observation.cu patient/Condition.rs?clinical-status=active")
    assert narrow(Scope("user", "Observation", "cruds"), ceiling) == [Scope("user", "Observation", "rs"),
                                                                      Scope("user", "Observation", "cu")]
    assert narrow(Scope("user", "*", "d"), ceiling) == []
    assert narrow(Scope("patient", "*", "r"), parse_ceiling("patient/Condition.rs?clinical-status=active")) == [
        Scope("patient", "Condition", "r", (("clinical-status", "active"),))]
    assert narrow_all([Scope("system", "*", "rs")], parse_ceiling("user/*.cruds")) == []


def test_only_a_scope_naming_audit_event_reaches_the_audit_trail() -> None:
    assert not Scope("system", "*", "cruds").covers_type("AuditEvent")
    assert Scope("system", "AuditEvent", "rs").covers_type("AuditEvent")
    assert narrow(Scope("user", "AuditEvent", "rs"), parse_ceiling("*/*.cruds")) == []
    assert narrow(Scope("user", "*", "rs"), parse_ceiling("*/AuditEvent.rs")) == [Scope("user", "AuditEvent", "rs")]
