"""`_summary` and `_elements`: trimming returned resources to what the client asked for.

Which elements are "summary" and which are mandatory comes from the R4 element model
(`isSummary`, `min`), so there is nothing per resource type here. A trimmed resource is marked
with the `SUBSETTED` tag, as search.html#summary requires.
"""

from __future__ import annotations

from typing import Any

from fhir_server.definitions.model import TypeModel, resource_model

Json = dict[str, Any]
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "Resource encoded in summary mode"}
_ALWAYS = ("resourceType", "id", "meta")


def _mandatory(model: TypeModel) -> set[str]:
    return {name for name, prop in model.properties.items() if prop.element.min >= 1}


def _summary(value: Any, model: TypeModel | None) -> Any:
    """The summary elements of `value`, descending into backbone elements (their own flags)."""
    if isinstance(value, list):
        return [_summary(v, model) for v in value]
    if model is None or not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        prop = model.properties.get(key) or model.extensions.get(key)
        if key in _ALWAYS or (prop is not None and prop.element.summary):
            nested = prop.model if prop is not None and prop.model and prop.model.kind == "backbone" else None
            out[key] = _summary(item, nested)
    return out


def _tagged(resource: Json) -> Json:
    meta = dict(resource.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(t.get("code") == "SUBSETTED" and t.get("system") == SUBSETTED["system"] for t in tags):
        tags.append(SUBSETTED)
    meta["tag"] = tags
    return {**resource, "meta": meta}


def summarize(resource: Json, mode: str | None) -> Json:
    """`resource` as `_summary=mode` asks (`true`, `text`, `data`; anything else: unchanged)."""
    model = resource_model(resource.get("resourceType", ""))
    if model is None or mode not in ("true", "text", "data"):
        return resource
    if mode == "true":
        trimmed = _summary(resource, model)
    elif mode == "text":
        keep = {*_ALWAYS, "text", *_mandatory(model)}
        trimmed = {k: v for k, v in resource.items() if k in keep}
    else:
        trimmed = {k: v for k, v in resource.items() if k != "text"}
    return _tagged(trimmed)


def select_elements(resource: Json, elements: list[str]) -> Json:
    """Only the top-level `elements` (plus id, meta and the mandatory ones), for `_elements`."""
    model = resource_model(resource.get("resourceType", ""))
    if model is None:
        return resource
    wanted = {e.split(".", 1)[0] for e in elements}
    keep = {*_ALWAYS, *_mandatory(model)}
    for name in wanted:
        keep.add(name)
        keep.add(f"_{name}")
        # A choice element is asked for by its name (`value`), stored under typed keys (`valueQuantity`).
        keep.update(k for k, p in model.properties.items() if p.element.choice and p.element.name == name)
    return _tagged({k: v for k, v in resource.items() if k in keep})
