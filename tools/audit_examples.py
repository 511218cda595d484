"""Regenerate the examples section of docs/audit.md from a real server.

Starts an in-memory embedded database and the server, performs one of each audited event kind
through the real HTTP API and OAuth endpoints (test helpers drive the login and token flows),
and writes the AuditEvents recorded for them between the markers in docs/audit.md.

    .venv/bin/python -m tools.audit_examples
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path

import httpx
from pymongo import MongoClient

from fhir_server.audit.collections import RESOURCE_TYPE
from fhir_server.config import Settings
from fhir_server.storage.embedded import MEMORY, EmbeddedDatabase
from tests.conftest import start_live_server
from tests.fhir_data import fhir_headers, patient
from tests.smart import REDIRECT, BearerAuth, authorize, create_user, register_app, user_token

DOC = Path(__file__).parent.parent / "docs" / "audit.md"
BEGIN, END = "<!-- examples:begin -->", "<!-- examples:end -->"


def _by_request(tag: str) -> dict:
    return {"res.entity.what.identifier.value": tag}


class Trail:
    """Collects, for each example, the AuditEvent a query finds once the outbox is sealed."""

    def __init__(self, database) -> None:
        self.database = database
        self.sections: list[str] = []

    def add(self, title: str, query: dict) -> None:
        deadline = time.monotonic() + 30
        while (found := self.database[RESOURCE_TYPE].find_one(query, sort=[("_id", -1)])) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no AuditEvent for {title}: {query}")
            time.sleep(0.1)
        event = {k: v for k, v in found["res"].items() if k != "meta"}
        self.sections.append(f"### {title}\n\n```json\n{json.dumps(event, indent=2)}\n```\n")


def record_examples(url: str, settings: Settings, auth: httpx.Auth, trail: Trail) -> None:
    """Perform one of each event kind and collect its AuditEvent."""
    admin = httpx.Client(base_url=url, auth=auth, headers=fhir_headers(), timeout=60)
    practitioner = admin.post("/Practitioner", json={"resourceType": "Practitioner",
                                                     "name": [{"family": "Example", "given": ["Dana"]}]}).json()["id"]
    subject = admin.post("/Patient", json=patient()).json()["id"]
    token = user_token(url, settings, "doctor", "user/*.cruds openid fhirUser",
                       fhir_user=f"Practitioner/{practitioner}")
    jti = admin.post("/auth/introspect", data={"token": token["access_token"]},
                     headers={"Content-Type": "application/x-www-form-urlencoded"}).json()["jti"]
    trail.add("Token issued (authorization code grant)", {"res.subtype.code": "token-issued", "res.agent.policy": jti})
    doctor = httpx.Client(base_url=url, auth=BearerAuth(token["access_token"]), headers=fhir_headers(), timeout=60)
    doctor.get(f"/Patient/{subject}", headers={"X-Request-Id": "example-read"})
    trail.add("Read", _by_request("example-read"))
    doctor.get("/Patient", params={"_id": subject}, headers={"X-Request-Id": "example-search"})
    trail.add("Search (one event per patient in the results)", _by_request("example-search"))
    doctor.post("/Observation", json={"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
                                      "subject": {"reference": f"Patient/{subject}"}},
                headers={"X-Request-Id": "example-create"})
    trail.add("Create", _by_request("example-create"))
    doctor.delete(f"/Patient/{subject}", headers={"X-Request-Id": "example-delete"})
    trail.add("Delete", _by_request("example-delete"))
    doctor.get("/AuditEvent", headers={"X-Request-Id": "example-forbidden"})
    trail.add("Access denied: a doctor asks for the audit trail (403)", _by_request("example-forbidden"))
    httpx.get(f"{url}/Patient", headers={"X-Request-Id": "example-unauthenticated"})
    trail.add("Access denied: no token (401)", _by_request("example-unauthenticated"))
    nurse = create_user(settings, "nurse")
    client_id, _ = register_app(settings, "user/*.rs")
    authorize(url, client_id, "user/*.rs", nurse.username)
    trail.add("Login", {"res.subtype.code": "110122", "res.outcome": "0",
                        "res.agent.who.identifier.value": nurse.username})
    with contextlib.suppress(AssertionError):  # the login page answers again instead of going on to consent
        authorize(url, client_id, "user/*.rs", nurse.username, password="not the password")
    trail.add("Login failure", {"res.subtype.code": "110122", "res.outcome": "4",
                                "res.agent.who.identifier.value": nurse.username})
    httpx.post(f"{url}/auth/token", data={"grant_type": "authorization_code", "code": "forged", "client_id": client_id,
                                          "redirect_uri": REDIRECT, "code_verifier": "v" * 43})
    trail.add("Token refused", {"res.subtype.code": "token-refused", "res.agent.who.identifier.value": client_id})


def main() -> None:
    with EmbeddedDatabase(MEMORY) as uri:
        settings = Settings(mongodb_uri=uri, database_name=f"examples_{uuid.uuid4().hex[:8]}")
        live = start_live_server(settings)
        trail = Trail(MongoClient(uri)[settings.database_name])
        try:
            record_examples(live.url, settings, live.auth, trail)
        finally:
            live.stop()
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n\n" + "\n".join(trail.sections) + f"\n{END}{tail}")
    print(f"wrote {len(trail.sections)} examples to {DOC}")


if __name__ == "__main__":
    main()
