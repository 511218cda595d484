"""Content negotiation: which JSON flavour to answer with and how to read a request body."""

from __future__ import annotations

from typing import Any

from fhir_server.fhir import json as fhir_json
from fhir_server.fhir.outcome import FhirError, bad_request

FHIR_JSON = "application/fhir+json"
JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
FORM = "application/x-www-form-urlencoded"

# `_format` values (http.html#mime-type) and Accept media types we answer with JSON.
_FORMAT_ALIASES = {"json": FHIR_JSON, FHIR_JSON: FHIR_JSON, JSON: JSON, "text/json": JSON}
_ACCEPTABLE = {FHIR_JSON: FHIR_JSON, JSON: JSON, "*/*": FHIR_JSON, "application/*": FHIR_JSON,
               "text/json": JSON}


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    kind, *parameters = value.split(";")
    params = {}
    for p in parameters:
        name, _, v = p.partition("=")
        params[name.strip().lower()] = v.strip().strip('"')
    return kind.strip().lower(), params


def _fhir_version_ok(params: dict[str, str]) -> bool:
    return params.get("fhirversion", "4.0") in ("4.0", "4.0.1")


def response_type(format_param: str | None, accept: str | None) -> str:
    """The media type to answer with; 406 when the client accepts none we produce."""
    if format_param is not None:
        kind, params = _media_type(format_param)
        if kind in _FORMAT_ALIASES and _fhir_version_ok(params):
            return _FORMAT_ALIASES[kind]
        raise FhirError(406, "not-supported", f"_format '{format_param}' is not supported; this server speaks JSON")
    if not accept or not accept.strip():
        return FHIR_JSON
    ranges = []
    for position, item in enumerate(accept.split(",")):
        kind, params = _media_type(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        ranges.append((-quality, position, kind, params))
    for negative_quality, _, kind, params in sorted(ranges):
        if negative_quality < 0 and kind in _ACCEPTABLE and _fhir_version_ok(params):
            return _ACCEPTABLE[kind]
    raise FhirError(406, "not-supported", f"None of the accepted types '{accept}' is supported; "
                    f"this server speaks {FHIR_JSON} and {JSON}")


def parse_body(content_type: str | None, body: bytes, method: str) -> Any:
    """A request body as JSON (a resource, or a JSON Patch list); 415 for other media types."""
    kind, params = _media_type(content_type or "")
    charset = params.get("charset", "utf-8").lower()
    allowed = (FHIR_JSON, JSON, JSON_PATCH) if method == "PATCH" else (FHIR_JSON, JSON)
    if kind not in allowed or charset not in ("utf-8", "utf8"):
        raise FhirError(415, "not-supported",
                        f"Content-Type '{content_type or '(none)'}' is not supported; use "
                        + " or ".join(allowed) + " with UTF-8")
    try:
        parsed = fhir_json.loads(body)
    except fhir_json.JSONError as error:
        raise bad_request(f"The body is not valid JSON: {error}", code="structure") from error
    if kind == JSON_PATCH and not isinstance(parsed, list):
        raise bad_request("A JSON Patch document must be a JSON array of operations", code="structure")
    return parsed
