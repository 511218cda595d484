"""user <-> Practitioner + PractitionerRole (staff) or Patient (role `patient`), linked to the login account.

The account is the identifier `SID + "account"` (the user id) plus `SID + "username"`; a licence is
a `qualification` with its number as identifier, its issuer and its validity period; the role is
a PractitionerRole code in the clinic's role CodeSystem, beside the HL7 practitioner-role code
where one exists.
"""

from __future__ import annotations

from mappings.domain import Licence, User
from mappings.fhir import (
    CLINIC_PROFILE,
    MRN,
    Json,
    base,
    compact,
    fhir_date,
    identifier,
    original_id,
    parse_date,
    period,
    reference,
    stable_id,
    system,
)

ROLE_SYSTEM = "https://medicalcycle.example/fhir/CodeSystem/user-role"
_HL7_ROLES = {"doctor": "doctor", "nurse": "nurse", "pharmacist": "pharmacist"}
_HL7_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"
LICENCE_SYSTEM = system("licence")
_LICENCE_CODE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MD"}],
                 "text": "Professional licence"}


def to_fhir(user: User) -> list[Json]:
    """[Practitioner, PractitionerRole] for staff; [Patient] for a patient's account."""
    if user.role == "patient":
        kind, original = (MRN, user.patient_id) if user.patient_id else ("account", user.id)
        patient = {"resourceType": "Patient", "id": stable_id(kind, original), **_person(user)}
        if user.patient_id:
            patient["identifier"].insert(0, identifier(MRN, user.patient_id))
        return [patient]
    # Only a licensed clinician meets the clinic's Practitioner profile.
    profile = CLINIC_PROFILE + "mc-practitioner" if user.licence else None
    practitioner = compact({**base("Practitioner", "account", user.id, profile), **_person(user),
                            "qualification": [_qualification(user.licence)] if user.licence else None})
    role = compact({
        **base("PractitionerRole", "account-role", user.id),
        "active": user.active,
        "practitioner": reference("Practitioner", "account", user.id),
        "code": [_role_code(user.role)],
        "specialty": [{"text": user.specialty}] if user.specialty else None,
    })
    return [practitioner, role]


def account_identifiers(user: User) -> list[Json]:
    """The identifiers linking a resource to `user`'s login account."""
    return [identifier("account", user.id), identifier("username", user.username)]


def _person(user: User) -> Json:
    telecom = [{"system": s, "value": v} for s, v in (("email", user.email), ("phone", user.phone)) if v]
    return compact({"identifier": account_identifiers(user), "active": user.active,
                    "name": [{"family": user.family_name, "given": [user.given_name]}], "telecom": telecom})


def _qualification(licence: Licence) -> Json:
    return compact({"identifier": [{"system": LICENCE_SYSTEM, "value": licence.number}], "code": _LICENCE_CODE,
                    "period": period(fhir_date(licence.valid_from), fhir_date(licence.valid_to)),
                    "issuer": {"display": licence.issuer}})


def _role_code(role: str) -> Json:
    coding = [{"system": ROLE_SYSTEM, "code": role}]
    if role in _HL7_ROLES:
        coding.append({"system": _HL7_ROLE_SYSTEM, "code": _HL7_ROLES[role]})
    return {"coding": coding}


def from_fhir(resources: list[Json]) -> User:
    """The user a `to_fhir` result describes (its Practitioner and PractitionerRole, or its Patient)."""
    person = next(r for r in resources if r["resourceType"] in ("Practitioner", "Patient"))
    name = person["name"][0]
    telecom = {t["system"]: t["value"] for t in person.get("telecom", ())}
    fields = {"id": original_id(person, "account"), "username": original_id(person, "username"),
              "given_name": name["given"][0], "family_name": name["family"], "email": telecom.get("email"),
              "phone": telecom.get("phone"), "active": person.get("active", True)}
    if person["resourceType"] == "Patient":
        return User(role="patient", patient_id=original_id(person, MRN), **fields)
    role = next(r for r in resources if r["resourceType"] == "PractitionerRole")
    code = next(c["code"] for c in role["code"][0]["coding"] if c["system"] == ROLE_SYSTEM)
    qualification = next(iter(person.get("qualification", ())), None)
    return User(role=code, specialty=(role.get("specialty") or [{}])[0].get("text"),
                licence=_licence(qualification) if qualification else None, **fields)


def _licence(qualification: Json) -> Licence:
    return Licence(number=qualification["identifier"][0]["value"], issuer=qualification["issuer"]["display"],
                   valid_from=parse_date(qualification["period"]["start"]),
                   valid_to=parse_date(qualification["period"].get("end")))
