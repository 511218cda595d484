"""Hypothesis strategies generating MedicalCycle Cloud domain records (`mappings.domain`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, get_args

from hypothesis import strategies as st
from pydantic import ValidationError

from mappings import domain
from mappings.history import BLOOD_TYPES

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ids = st.text(_ALPHABET + "-", min_size=1, max_size=12).filter(lambda s: s[0] != "-")
words = st.text(_ALPHABET, min_size=1, max_size=10)
texts = st.lists(words, min_size=1, max_size=4).map(" ".join)
dates = st.dates(min_value=date(1920, 1, 1), max_value=date(2040, 12, 31))
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
datetimes = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=zones)
amounts = st.floats(min_value=0.1, max_value=500, allow_nan=False).map(lambda x: round(x, 2))


def record(model: type[domain.Record], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`model` instances from field strategies (`st.builds` would also fill its camelCase aliases);
    values the model refuses (a period ending before it starts) are not generated."""
    return st.fixed_dictionaries(fields).filter(_accepted(model)).map(lambda values: model(**values))


def _accepted(model: type[domain.Record]) -> Callable[[dict], bool]:
    def accepted(values: dict) -> bool:
        try:
            model(**values)
        except ValidationError:
            return False
        return True

    return accepted


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def unique_by_id(strategy: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[tuple]:
    return st.lists(strategy, max_size=max_size, unique_by=lambda r: r.id).map(tuple)


codes = record(domain.Code, system=st.sampled_from(["http://hl7.org/fhir/sid/icd-10", "http://snomed.info/sct",
                                                       "http://www.nlm.nih.gov/research/umls/rxnorm"]),
                  code=ids, display=st.none() | texts)
licences = record(domain.Licence, number=ids, issuer=texts, valid_from=dates, valid_to=optional(dates))
staff = record(domain.User, id=ids, username=ids, role=st.sampled_from(["doctor", "nurse", "pharmacist", "admin"]),
                  given_name=words, family_name=words, email=optional(ids.map(lambda s: s + "@example.org")),
                  phone=optional(st.from_regex(r"\+[0-9]{8,12}", fullmatch=True)), active=st.booleans(),
                  licence=optional(licences), specialty=optional(texts))
patient_users = record(domain.User, id=ids, username=ids, role=st.just("patient"), given_name=words,
                          family_name=words, email=optional(ids.map(lambda s: s + "@example.org")),
                          active=st.booleans(), patient_id=optional(ids))
vitals = record(domain.Vitals, **{name: optional(amounts) for name in domain.Vitals.model_fields})
consultations = record(
    domain.Consultation, id=ids, doctor_id=ids, start=datetimes, end=optional(datetimes), reason=texts,
    vitals=optional(vitals), diagnosis=optional(codes), notes=optional(texts), examination=optional(texts),
    plan=optional(texts), follow_up=optional(record(domain.FollowUp, date=dates, reason=texts)))
doses = record(domain.Dose, value=amounts, unit=st.sampled_from(["mg", "mL", "{tbl}", "g"]))
dispensings = record(domain.Dispensing, id=ids, pharmacist_id=ids, dispensed_at=datetimes, quantity=doses,
                        days_supply=optional(st.integers(0, 365)))
prescriptions = record(
    domain.Prescription, id=ids, doctor_id=ids, consultation_id=optional(ids), prescribed_at=datetimes,
    medication=codes, dose=doses,
    frequency=record(domain.Frequency, times=st.integers(1, 6), period=st.sampled_from([1, 0.5, 2, 8.0]),
                        period_unit=st.sampled_from(get_args(domain.PeriodUnit))),
    instructions=optional(texts), refills=st.integers(0, 12), expires_on=dates,
    status=st.sampled_from(get_args(domain.PrescriptionStatus)), dispensings=unique_by_id(dispensings))
patients = record(
    domain.Patient, id=ids, given_name=words, family_name=words, birth_date=dates,
    gender=st.sampled_from(get_args(domain.Gender)), phone=optional(st.from_regex(r"\+[0-9]{8,12}", fullmatch=True)),
    email=optional(ids.map(lambda s: s + "@example.org")),
    address=optional(record(domain.Address, line=texts, city=words, postal_code=optional(ids),
                               country=optional(st.sampled_from(["PT", "DE", "US"])))),
    emergency_contact=optional(record(domain.EmergencyContact, name=texts, relationship=words,
                                         phone=optional(st.from_regex(r"\+[0-9]{8,12}", fullmatch=True)))),
    blood_type=optional(st.sampled_from(sorted(BLOOD_TYPES))),
    allergies=unique_by_id(record(domain.Allergy, id=ids, substance=texts, recorded_date=optional(dates),
                                     reaction=optional(record(domain.AllergyReaction, manifestation=texts,
                                                                 severity=optional(st.sampled_from(
                                                                     get_args(domain.Severity))))))),
    chronic_conditions=unique_by_id(record(domain.ChronicCondition, id=ids, code=codes,
                                              onset_date=optional(dates))),
    family_history=unique_by_id(record(domain.FamilyHistoryItem, id=ids,
                                          relationship=st.sampled_from(["FTH", "MTH", "BRO", "SIS", "GRMTH"]),
                                          condition=codes, onset_age=optional(st.integers(1, 110)))),
    insurance=unique_by_id(record(domain.Insurance, id=ids, provider=texts, policy_number=ids,
                                     valid_from=optional(dates), valid_to=optional(dates))),
    consultations=unique_by_id(consultations),
    prescriptions=unique_by_id(prescriptions))
