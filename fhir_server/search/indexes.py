"""The MongoDB indexes each resource collection gets, derived from its search parameters.

Every collection: `ts` (`_lastUpdated`, history) and `sp.@compartment` (compartment searches and
patient-scoped access). Then one index per commonly searched parameter the type has (identifier,
names, birthdate, subject/patient, code, date, status, url...), on the key that parameter's
queries use (`sp.code.t`, `sp.name.v`, `sp.date.s`+`sp.date.e`...). Compound indexes serve the
typical clinical query `patient=...&code=...&date=...` where the type has those parameters and
both `patient` and `date` are single-valued: MongoDB refuses to index documents in which two
fields of one compound index are arrays, and `code.t` always is one.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from fhir_server.search import compartments
from fhir_server.search.registry import SearchParam, registry

# Parameters worth an index wherever they exist.
COMMON = ("identifier", "name", "family", "given", "birthdate", "subject", "patient", "code",
          "date", "status", "url", "encounter", "category")


def _keys(param: SearchParam) -> list[str]:
    base = f"sp.{param.code}"
    match param.type:
        case "token":
            return [f"{base}.t"]
        case "reference":
            return [f"{base}.r"]
        case "string" | "uri":
            return [f"{base}.v"]
        case "date":
            return [f"{base}.s", f"{base}.e"]
        case "number" | "quantity":
            return [f"{base}.lo", f"{base}.hi"]
    return []


def _model(fields: list[str], name: str) -> IndexModel:
    return IndexModel([(f, ASCENDING) for f in fields], name=name)


def index_specs(resource_type: str) -> list[IndexModel]:
    """The indexes to create on `resource_type`'s collection."""
    params = registry().params(resource_type)
    models = [_model(["ts"], "ts"), _model([f"sp.{compartments.KEY}"], "compartment")]
    patient, code, date = params.get("patient"), params.get("code"), params.get("date")
    compound = bool(patient and date and patient.single and date.single
                    and patient.type == "reference" and date.type == "date")
    for name in COMMON:
        param = params.get(name)
        # The compound indexes below start with sp.patient.r, so they serve patient alone too.
        if param is None or param.column or (compound and name == "patient"):
            continue
        if keys := _keys(param):
            models.append(_model(keys, f"sp_{name}"))
    if compound:
        if code and code.type == "token":
            models.append(_model(["sp.patient.r", "sp.code.t", "sp.date.s"], "patient_code_date"))
        models.append(_model(["sp.patient.r", "sp.date.s"], "patient_date"))
    return models
