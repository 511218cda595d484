"""Consultation vitals <-> Observations following the R4 vital-signs profile.

Each measurement is an Observation with category `vital-signs`, its LOINC code and a UCUM
quantity; blood pressure is the panel 85354-9 with systolic and diastolic components.
"""

from __future__ import annotations

from datetime import datetime

from mappings.domain import Vitals
from mappings.fhir import CORE_PROFILE, LOINC, Json, base, fhir_datetime, find, original_id, quantity

# Vitals field -> (LOINC code, display, UCUM unit, the R4 vital-signs profile it claims)
VITAL_SIGNS: dict[str, tuple[str, str, str, str]] = {
    "heart_rate": ("8867-4", "Heart rate", "/min", "heartrate"),
    "respiratory_rate": ("9279-1", "Respiratory rate", "/min", "resprate"),
    "temperature": ("8310-5", "Body temperature", "Cel", "bodytemp"),
    "weight": ("29463-7", "Body weight", "kg", "bodyweight"),
    "height": ("8302-2", "Body height", "cm", "bodyheight"),
    "oxygen_saturation": ("2708-6", "Oxygen saturation in Arterial blood", "%", "oxygensat"),
}
BLOOD_PRESSURE = ("85354-9", "Blood pressure panel with all children optional")
# The panel claims the general profile: `bp` requires both pressures, and a consultation may
# have recorded only one.
BLOOD_PRESSURE_PROFILE = "vitalsigns"
BLOOD_PRESSURE_COMPONENTS: dict[str, tuple[str, str, str]] = {
    "systolic": ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    "diastolic": ("8462-4", "Diastolic blood pressure", "mm[Hg]"),
}
_VITAL_SIGNS_CATEGORY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": "vital-signs", "display": "Vital Signs"}], "text": "Vital Signs"}
KIND = "vital-sign"


def _code(code: str, display: str) -> Json:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def to_fhir(consultation_id: str, vitals: Vitals, effective: datetime, context: Json) -> list[Json]:
    """One Observation per measurement; `context` holds subject, encounter and performer."""

    def observation(field: str, code: Json, value: Json, profile: str) -> Json:
        return {**base("Observation", KIND, f"{consultation_id}/{field}", CORE_PROFILE + profile), "status": "final",
                "category": [_VITAL_SIGNS_CATEGORY], "code": code, **context,
                "effectiveDateTime": fhir_datetime(effective), **value}

    out = [observation(field, _code(code, display), {"valueQuantity": quantity(value, unit)}, profile)
           for field, (code, display, unit, profile) in VITAL_SIGNS.items()
           if (value := getattr(vitals, field)) is not None]
    components = [{"code": _code(code, display), "valueQuantity": quantity(value, unit)}
                  for field, (code, display, unit) in BLOOD_PRESSURE_COMPONENTS.items()
                  if (value := getattr(vitals, field)) is not None]
    if components:
        out.append(observation("blood-pressure", _code(*BLOOD_PRESSURE), {"component": components},
                               BLOOD_PRESSURE_PROFILE))
    return out


def from_fhir(consultation_id: str, resources: list[Json]) -> Vitals | None:
    """The vitals of consultation `consultation_id` among `resources`; None when none were taken."""
    values: dict[str, float] = {}
    by_loinc = {entry[0]: field for field, entry in (VITAL_SIGNS | BLOOD_PRESSURE_COMPONENTS).items()}
    for observation in find(resources, "Observation", KIND):
        if not original_id(observation, KIND).startswith(consultation_id + "/"):
            continue
        for part in [observation, *observation.get("component", ())]:
            code = part["code"]["coding"][0]["code"]
            if code in by_loinc and "valueQuantity" in part:
                values[by_loinc[code]] = part["valueQuantity"]["value"]
    return Vitals(**values) if values else None
