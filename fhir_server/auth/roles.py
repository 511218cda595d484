"""Roles carried over from the clinic's system, each a ceiling on the scopes a user's token may hold.

A ceiling uses the context `*` (any of patient/user) unless the role is tied to one; the
`patient` role is tied to `patient/`: its users see their own compartment only, whatever they
ask for. `docs/security.md` documents this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.auth.scopes import Scope, parse_ceiling

# Clinical data a pharmacist works with (read), and what they dispense (write).
_PHARMACY_READ = ("Patient", "Practitioner", "PractitionerRole", "Organization", "Medication", "MedicationRequest",
                  "MedicationDispense", "MedicationAdministration", "MedicationStatement", "AllergyIntolerance",
                  "Condition", "Observation", "Coverage", "Encounter")
_NURSE_WRITE = ("Observation", "MedicationAdministration", "Procedure", "Flag", "Encounter", "CarePlan",
                "Communication", "Task")


@dataclass(frozen=True)
class Role:
    name: str
    ceiling: tuple[Scope, ...]
    description: str = ""


def _role(name: str, ceiling: str, description: str) -> Role:
    return Role(name, tuple(parse_ceiling(ceiling)), description)


ROLES: dict[str, Role] = {role.name: role for role in (
    _role("admin", "*/*.cruds", "everything but the audit trail (a `*` never covers AuditEvent)"),
    _role("doctor", "*/*.cruds", "read, search and write all clinical data"),
    _role("nurse", " ".join(["*/*.rs", *(f"*/{t}.cu" for t in _NURSE_WRITE)]),
          "read and search all clinical data; create and update " + ", ".join(_NURSE_WRITE)),
    _role("pharmacist", " ".join([*(f"*/{t}.rs" for t in _PHARMACY_READ), "*/MedicationDispense.cud",
                                  "*/Medication.cud", "*/MedicationRequest.u"]),
          "read medication-related data; dispense (MedicationDispense, Medication); update MedicationRequest"),
    _role("patient", "patient/*.rs patient/QuestionnaireResponse.cru patient/Observation.cu",
          "their own compartment only: read and search; answer questionnaires, record observations"),
    _role("auditor", "*/AuditEvent.rs", "AuditEvent read and search only: the one role that reaches the audit trail"),
)}


def role(name: str) -> Role:
    """The role called `name`; `KeyError` if there is none."""
    return ROLES[name]
