"""The records of the original MedicalCycle Cloud system, as its export file (`docs/migration.md`) holds them.

Field names are the export's camelCase JSON keys in snake_case; unknown keys are refused, so an
export of a newer, unmapped shape fails loudly instead of losing data.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

Role = Literal["doctor", "nurse", "pharmacist", "admin", "patient"]
Gender = Literal["male", "female", "other", "unknown"]
BloodType = Literal["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"]
Severity = Literal["mild", "moderate", "severe"]
PeriodUnit = Literal["h", "d", "wk", "mo"]
PrescriptionStatus = Literal["active", "on-hold", "cancelled", "completed", "stopped", "draft"]


class Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True,
                              extra="forbid")


def in_order(start: object, end: object, what: str) -> None:
    """FHIR periods must not end before they start (invariant per-1): such records are refused."""
    if start is not None and end is not None and end < start:
        raise ValueError(f"{what} ends before it starts")


class Code(Record):
    """A coded value: diagnoses (ICD-10, SNOMED CT), medications (RxNorm, ATC)..."""

    system: str
    code: str
    display: str | None = None


class Licence(Record):
    number: str
    issuer: str
    valid_from: date
    valid_to: date | None = None

    @model_validator(mode="after")
    def _period(self) -> Licence:
        in_order(self.valid_from, self.valid_to, "the licence")
        return self


class User(Record):
    """A login account of the clinic: staff (with a role and, for clinicians, a licence) or a patient."""

    id: str
    username: str
    role: Role
    given_name: str
    family_name: str
    email: str | None = None
    phone: str | None = None
    active: bool = True
    licence: Licence | None = None
    specialty: str | None = None
    patient_id: str | None = None
    """For role `patient`: the patient record this account belongs to."""


class Address(Record):
    line: str
    city: str
    postal_code: str | None = None
    country: str | None = None


class EmergencyContact(Record):
    name: str
    relationship: str
    phone: str | None = None


class AllergyReaction(Record):
    manifestation: str
    severity: Severity | None = None


class Allergy(Record):
    id: str
    substance: str
    reaction: AllergyReaction | None = None
    recorded_date: date | None = None


class ChronicCondition(Record):
    id: str
    code: Code
    onset_date: date | None = None


class FamilyHistoryItem(Record):
    id: str
    relationship: str
    """A v3 RoleCode (`FTH`, `MTH`, `SIS`, `BRO`, `GRMTH`...)."""
    condition: Code
    onset_age: int | None = Field(default=None, ge=1)
    """In whole years (FHIR ages are positive: a condition from birth has no onset age)."""


class Insurance(Record):
    id: str
    provider: str
    policy_number: str
    valid_from: date | None = None
    valid_to: date | None = None

    @model_validator(mode="after")
    def _period(self) -> Insurance:
        in_order(self.valid_from, self.valid_to, "the insurance")
        return self


class Vitals(Record):
    """Measurements taken at a consultation, in the units named (UCUM)."""

    systolic: float | None = None
    """mm[Hg]"""
    diastolic: float | None = None
    """mm[Hg]"""
    heart_rate: float | None = None
    """/min"""
    respiratory_rate: float | None = None
    """/min"""
    temperature: float | None = None
    """Cel"""
    weight: float | None = None
    """kg"""
    height: float | None = None
    """cm"""
    oxygen_saturation: float | None = None
    """%"""


class FollowUp(Record):
    date: date
    reason: str


class Consultation(Record):
    id: str
    doctor_id: str
    start: AwareDatetime
    end: AwareDatetime | None = None
    reason: str
    vitals: Vitals | None = None
    diagnosis: Code | None = None
    notes: str | None = None
    examination: str | None = None
    plan: str | None = None
    follow_up: FollowUp | None = None

    @field_validator("vitals")
    @classmethod
    def _measured(cls, vitals: Vitals | None) -> Vitals | None:
        """Vitals with no measurement are no vitals."""
        return vitals if vitals is not None and vitals.model_dump(exclude_none=True) else None

    @model_validator(mode="after")
    def _period(self) -> Consultation:
        in_order(self.start, self.end, "the consultation")
        return self


class Dose(Record):
    value: float
    unit: str
    """A UCUM code: `mg`, `mL`, `{tbl}`..."""


class Frequency(Record):
    """`times` doses every `period` `period_unit`: twice a day is 2 per 1 d."""

    times: int = Field(ge=1)
    period: float = Field(gt=0)
    period_unit: PeriodUnit


class Dispensing(Record):
    id: str
    pharmacist_id: str
    dispensed_at: AwareDatetime
    quantity: Dose
    days_supply: int | None = Field(default=None, ge=0)


class Prescription(Record):
    id: str
    doctor_id: str
    consultation_id: str | None = None
    prescribed_at: AwareDatetime
    medication: Code
    dose: Dose
    frequency: Frequency
    instructions: str | None = None
    refills: int = Field(ge=0)
    """Repeat dispenses allowed after the first."""
    expires_on: date
    status: PrescriptionStatus
    dispensings: tuple[Dispensing, ...] = ()

    @model_validator(mode="after")
    def _validity(self) -> Prescription:
        in_order(self.prescribed_at.date(), self.expires_on, "the prescription's validity")
        return self


class Patient(Record):
    id: str
    given_name: str
    family_name: str
    birth_date: date
    gender: Gender
    phone: str | None = None
    email: str | None = None
    address: Address | None = None
    emergency_contact: EmergencyContact | None = None
    blood_type: BloodType | None = None
    allergies: tuple[Allergy, ...] = ()
    chronic_conditions: tuple[ChronicCondition, ...] = ()
    family_history: tuple[FamilyHistoryItem, ...] = ()
    insurance: tuple[Insurance, ...] = ()
    consultations: tuple[Consultation, ...] = ()
    prescriptions: tuple[Prescription, ...] = ()


class Export(Record):
    """A whole export file."""

    format: Literal["medicalcycle-export"]
    version: Literal[1]
    exported_at: AwareDatetime | None = None
    users: tuple[User, ...] = ()
    patients: tuple[Patient, ...] = ()
