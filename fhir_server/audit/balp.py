"""AuditEvents from audit records, after the IHE Basic Audit Log Patterns (BALP) for R4.

FHIR interactions use type `rest` with the restful-interaction as subtype; logins and logouts
use DICOM 110114 "User Authentication" with 110122/110123; token events use 110114 with a
subtype from our own code system. Agents: the user (BALP UserOauthAgent, requestor, token id in
`policy`), the client application (DICOM 110153 Source Role ID, with its network address) and
this server (110152 Destination Role ID). Entities: each resource touched, the query (base64),
the patient, and the X-Request-Id. An event touching several patients' data becomes one
AuditEvent per patient, so "who saw this patient" is a plain search.
"""

from __future__ import annotations

import base64
from typing import Any

from fhir_server.audit.record import Actor, AuditRecord
from fhir_server.fhir.primitives import format_instant, new_id

Json = dict[str, Any]

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
SECURITY_EVENT = "https://medicalcycle.example/fhir/CodeSystem/security-event"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP_AGENT = "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
SERVER_NAME = "MedicalCycle FHIR"

_TYPES = {
    "rest": {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"},
    "login": {"system": DCM, "code": "110114", "display": "User Authentication"},
    "logout": {"system": DCM, "code": "110114", "display": "User Authentication"},
    "token": {"system": DCM, "code": "110114", "display": "User Authentication"},
}
_SECURITY_SUBTYPES = {
    "login": {"system": DCM, "code": "110122", "display": "Login"},
    "logout": {"system": DCM, "code": "110123", "display": "Logout"},
}
# Our restful interaction codes that the R4 restful-interaction code system spells differently.
_RESTFUL_CODES = {"search-compartment": "search-type", "conditional-update": "update",
                  "conditional-delete": "delete", "conditional-patch": "patch"}


def _coding(system: str, code: str, display: str | None = None) -> Json:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _subtype(record: AuditRecord) -> Json:
    if record.kind == "rest":
        return _coding(RESTFUL, _RESTFUL_CODES.get(record.subtype, record.subtype))
    return _SECURITY_SUBTYPES.get(record.kind) or _coding(SECURITY_EVENT, record.subtype)


def _user_agent(actor: Actor, address: str | None) -> Json:
    agent: Json = {"type": {"coding": [_coding(BALP_AGENT, "UserOauthAgent", "User OAuth Agent participant")]}}
    who: Json = {}
    if actor.reference:
        who["reference"] = actor.reference
    if actor.identifier:
        who["identifier"] = {"value": actor.identifier}
    if actor.display:
        who["display"] = actor.display
    if who:
        agent["who"] = who
    agent["requestor"] = True
    if actor.roles:
        agent["role"] = [{"text": role} for role in actor.roles]
    if actor.token_id:
        agent["policy"] = [actor.token_id]
    if address:
        agent["network"] = {"address": address, "type": "2"}
    return agent


def _client_agent(record: AuditRecord) -> Json:
    agent: Json = {"type": {"coding": [_coding(DCM, "110153", "Source Role ID")]}}
    client_id = record.actor.client_id if record.actor else None
    if client_id:
        agent["who"] = {"identifier": {"value": client_id}}
    agent["requestor"] = False
    if record.client_address:
        agent["network"] = {"address": record.client_address, "type": "2"}
    return agent


def _server_agent(record: AuditRecord) -> Json:
    agent: Json = {"type": {"coding": [_coding(DCM, "110152", "Destination Role ID")]},
                   "who": {"display": SERVER_NAME}, "requestor": False}
    if record.server_url:
        agent["network"] = {"address": record.server_url, "type": "5"}
    return agent


def _entities(record: AuditRecord, patient: str | None) -> list[Json]:
    entities = [{"what": {"reference": reference}, "type": _coding(ENTITY_TYPE, "2", "System Object"),
                 "role": _coding(OBJECT_ROLE, "4", "Domain Resource")} for reference in record.resources]
    if record.query is not None:
        entities.append({"type": _coding(ENTITY_TYPE, "2", "System Object"),
                         "role": _coding(OBJECT_ROLE, "24", "Query"),
                         "query": base64.b64encode(record.query.encode()).decode()})
    if patient:
        entities.append({"what": {"reference": patient}, "type": _coding(ENTITY_TYPE, "1", "Person"),
                         "role": _coding(OBJECT_ROLE, "1", "Patient")})
    if record.request_id:
        entities.append({"what": {"identifier": {"value": record.request_id}},
                         "type": _coding(BALP_ENTITY, "XrequestId")})
    if record.extra:
        entities.append({"type": _coding(ENTITY_TYPE, "4", "Other"), "description": record.subtype,
                         "detail": [{"type": k, "valueString": v} for k, v in sorted(record.extra.items())]})
    return entities


def audit_events(record: AuditRecord) -> list[Json]:
    """The AuditEvent resources for `record`: one per patient touched, or one when none is."""
    agents = [_client_agent(record), _server_agent(record)]
    if record.actor is not None:
        agents.insert(0, _user_agent(record.actor, record.client_address))
    events = []
    for patient in record.patients or (None,):
        event: Json = {
            "resourceType": "AuditEvent",
            "id": new_id(),
            "type": _TYPES[record.kind],
            "subtype": [_subtype(record)],
            "action": record.action,
            "recorded": format_instant(record.recorded),
            "outcome": record.outcome,
        }
        if record.outcome_text:
            event["outcomeDesc"] = record.outcome_text
        event["agent"] = agents
        event["source"] = {"observer": {"display": SERVER_NAME},
                           "type": [_coding(SOURCE_TYPE, "4", "Application Server")]}
        entities = _entities(record, patient)
        if entities:
            event["entity"] = entities
        events.append(event)
    return events
