"""Realistic patient transaction Bundles, shaped like Synthea's output, reproducible by seed.

Each Bundle holds a Patient, the Practitioners and Organization caring for them, and a number of
Encounters, each with vital-sign Observations, a Condition and a MedicationRequest; every
reference between them is a `urn:uuid:` fullUrl, and every entry is a `POST` (server-assigned ids).

    python -m bench.patient_bundles -n 3 > bundles.ndjson     # one Bundle per line
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from typing import Any

import orjson

Json = dict[str, Any]

FAMILIES = ["Garcia", "Smith", "Nguyen", "Okafor", "Müller", "Rossi", "Kowalski", "Haddad", "Silva", "Tanaka"]
GIVEN = ["Ada", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Goran", "Hana", "Ivan", "Jun"]
# (LOINC code, display, unit, low, high): vital signs as Synthea records them.
VITALS = [("8867-4", "Heart rate", "/min", 55, 110), ("9279-1", "Respiratory rate", "/min", 12, 22),
          ("8310-5", "Body temperature", "Cel", 36.1, 38.5), ("29463-7", "Body weight", "kg", 45, 120),
          ("8302-2", "Body height", "cm", 150, 198), ("2339-0", "Glucose", "mg/dL", 70, 180)]
CONDITIONS = [("44054006", "Diabetes mellitus type 2"), ("38341003", "Hypertension"),
              ("195662009", "Acute viral pharyngitis"), ("10509002", "Acute bronchitis"),
              ("40055000", "Chronic sinusitis")]
MEDICATIONS = [("860975", "metformin 500 MG"), ("314076", "lisinopril 10 MG"), ("308182", "amoxicillin 250 MG"),
               ("310965", "ibuprofen 200 MG")]


def _entry(resource: Json, rng: random.Random) -> Json:
    return {"fullUrl": f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}", "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]}}


def _coding(system: str, code: str, display: str) -> Json:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def patient_bundle(seed: int, encounters: int = 4, observations: int = 5) -> Json:
    """A transaction Bundle for one patient: 4 + encounters * (3 + observations) resources."""
    rng = random.Random(seed)
    family, given = rng.choice(FAMILIES), rng.choice(GIVEN)
    organization = _entry({"resourceType": "Organization", "name": f"{family} Family Clinic",
                           "identifier": [{"system": "https://github.com/synthetichealth/synthea",
                                           "value": f"org-{seed}"}]}, rng)
    practitioners = [_entry({"resourceType": "Practitioner", "active": True,
                             "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": f"{seed:06d}{i}"}],
                             "name": [{"family": rng.choice(FAMILIES), "given": [rng.choice(GIVEN)],
                                       "prefix": ["Dr."]}]}, rng) for i in range(2)]
    patient = _entry({
        "resourceType": "Patient",
        "identifier": [{"system": "https://github.com/synthetichealth/synthea", "value": f"bench-{seed}"}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": rng.choice(["male", "female"]),
        "birthDate": f"{rng.randint(1930, 2015)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "address": [{"line": [f"{rng.randint(1, 999)} Main Street"], "city": "Springfield", "country": "US"}],
        "managingOrganization": {"reference": organization["fullUrl"]},
        "generalPractitioner": [{"reference": practitioners[0]["fullUrl"]}],
    }, rng)
    subject = {"reference": patient["fullUrl"]}
    entries = [organization, *practitioners, patient]
    for number in range(encounters):
        # Years cycle through 2010-2025, so large Bundles (hundreds of Encounters) stay valid.
        day = f"{2010 + number % 16}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        practitioner = rng.choice(practitioners)
        encounter = _entry({
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [_coding("http://snomed.info/sct", "185349003", "Encounter for check up")],
            "subject": subject, "period": {"start": f"{day}T09:00:00Z", "end": f"{day}T09:30:00Z"},
            "participant": [{"individual": {"reference": practitioner["fullUrl"]}}],
            "serviceProvider": {"reference": organization["fullUrl"]},
        }, rng)
        context = {"reference": encounter["fullUrl"]}
        entries.append(encounter)
        for code, display, unit, low, high in rng.sample(VITALS, observations):
            entries.append(_entry({
                "resourceType": "Observation", "status": "final",
                "category": [_coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs",
                                     "Vital signs")],
                "code": _coding("http://loinc.org", code, display), "subject": subject, "encounter": context,
                "effectiveDateTime": f"{day}T09:10:00Z", "issued": f"{day}T09:10:00.000Z",
                "valueQuantity": {"value": round(rng.uniform(low, high), 1), "unit": unit,
                                  "system": "http://unitsofmeasure.org", "code": unit},
            }, rng))
        condition_code, condition_display = rng.choice(CONDITIONS)
        condition = _entry({
            "resourceType": "Condition",
            "clinicalStatus": _coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "code": _coding("http://snomed.info/sct", condition_code, condition_display),
            "subject": subject, "encounter": context, "onsetDateTime": f"{day}T09:15:00Z",
            "recorder": {"reference": practitioner["fullUrl"]},
        }, rng)
        medication_code, medication_display = rng.choice(MEDICATIONS)
        entries += [condition, _entry({
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": _coding("http://www.nlm.nih.gov/research/umls/rxnorm", medication_code,
                                                 medication_display),
            "subject": subject, "encounter": context, "authoredOn": f"{day}T09:20:00Z",
            "requester": {"reference": practitioner["fullUrl"]},
            "reasonReference": [{"reference": condition["fullUrl"]}],
        }, rng)]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1, help="Bundles to write (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for i in range(args.n):
        sys.stdout.buffer.write(orjson.dumps(patient_bundle(args.seed + i)) + b"\n")


if __name__ == "__main__":
    main()
