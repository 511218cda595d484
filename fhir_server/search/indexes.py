"""The MongoDB indexes each resource collection gets, derived from its search parameters.

Every collection: `ts` (`_lastUpdated`, history) and `sp.@compartment` (compartment searches and
patient-scoped access). Then one index per commonly searched parameter the type has (identifier,
names, birthdate, subject/patient, code, date, url, encounter), on the key that parameter's
queries use (`sp.code.t`, `sp.name.v`, `sp.date.s`+`sp.date.e`...). Compound indexes serve the
typical clinical query `patient=...&code=...&date=...` where the type has those parameters and
both `patient` and `date` are single-valued: MongoDB refuses to index documents in which two
fields of one compound index are arrays, and `code.t` always is one. (`patient`, `date`) and
(`agent`, `date`) indexes need only the date to be single-valued (AuditEvent's patients are a list).

Every index makes every write of its type dearer (on SecantusDB about 0.15 ms of database CPU per
document and index), so parameters with a handful of values (`status`, `category`) get none: an
index on them finds most of the collection, and the queries using them also name a patient or a
code. The server owns the indexes named as `index_specs` names them (`is_managed`): at start-up it
drops those a newer version no longer asks for; indexes an operator adds under other names stay.
The `contained` collection (contained resources of every type) gets `code` and `identifier`, what
contained Medications, Substances, Practitioners... are looked up by.
"""

from __future__ import annotations

import re
from functools import cache

from pymongo import ASCENDING, IndexModel

from fhir_server.search import compartments
from fhir_server.search.registry import SearchParam, registry
from fhir_server.storage.contained import CONTAINED

# Parameters worth an index wherever they exist.
COMMON = ("identifier", "name", "family", "given", "birthdate", "subject", "patient", "code",
          "date", "url", "encounter")
# More for types reviewed along other axes: auditors ask "who did what" as often as "to whom".
EXTRA = {"AuditEvent": ("agent", "entity")}
# Compound (parameter, date) indexes for "this patient's / this user's events in a period".
DATED = ("patient", "agent")
_MANAGED_NAME = re.compile(r"ts|compartment|sp_.+|.+_date")
# The contained collection holds every type: keys the common lookups of contained resources use.
CONTAINED_KEYS = {"code": "sp.code.t", "identifier": "sp.identifier.t"}


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
    """The indexes to create on `resource_type`'s collection (or on the `contained` collection)."""
    if resource_type == CONTAINED:
        return [_model([key], f"sp_{name}") for name, key in CONTAINED_KEYS.items()]
    params = registry().params(resource_type)
    models = [_model(["ts"], "ts"), _model([f"sp.{compartments.KEY}"], "compartment")]
    patient, code, date = params.get("patient"), params.get("code"), params.get("date")
    dated = [name for name in DATED if _dated(params.get(name), date)]
    with_code = bool("patient" in dated and patient and patient.single and code and code.type == "token")
    for name in (*COMMON, *EXTRA.get(resource_type, ())):
        param = params.get(name)
        # The compound indexes below start with sp.<name>.r, so they serve the parameter alone too.
        if param is None or param.column or name in dated:
            continue
        if keys := _keys(param):
            models.append(_model(keys, f"sp_{name}"))
    if with_code:
        # Its (patient) prefix serves `patient` alone and with a date: no separate patient_date.
        models.append(_model(["sp.patient.r", "sp.code.t", "sp.date.s"], "patient_code_date"))
        dated.remove("patient")
    models += [_model([f"sp.{name}.r", "sp.date.s"], f"{name}_date") for name in dated]
    return models


def is_managed(index_name: str) -> bool:
    """Whether an index of a resource collection is one `index_specs` names (else an operator's)."""
    return _MANAGED_NAME.fullmatch(index_name) is not None


def _dated(param: SearchParam | None, date: SearchParam | None) -> bool:
    """Whether (param, date) can share a compound index: a reference and a single-valued date
    (MongoDB indexes at most one array field per document in a compound index)."""
    return bool(param and date and param.type == "reference" and date.type == "date" and date.single)


@cache
def leading_fields(resource_type: str) -> frozenset[str]:
    """The first field of each of `resource_type`'s indexes: those a range query is served by.

    Cached for the process, like `selective_fields`.
    """
    return frozenset(next(iter(model.document["key"])) for model in index_specs(resource_type))


@cache
def selective_fields(resource_type: str) -> frozenset[str]:
    """Fields an equality on which finds few documents through an index: `_id`, the compartment
    and the indexed references (one patient's observations, one encounter's procedures).

    Cached for the process: a custom parameter registered later could only change how a query
    is split into index lookups, never what it matches.
    """
    leading = leading_fields(resource_type)
    return frozenset({"_id", f"sp.{compartments.KEY}", *(f for f in leading if f.endswith(".r"))})
