"""A Bundle's entries as FHIR requests: method, relative path, query, conditional headers and body."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from fhir_server.fhir.outcome import FhirError, bad_request
from fhir_server.interactions.model import FhirRequest, Json

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = ("POST", "PUT", "PATCH")
# Bundle.entry.request elements carrying the HTTP conditional headers.
HEADER_ELEMENTS = {"ifNoneMatch": "if-none-match", "ifModifiedSince": "if-modified-since",
                   "ifMatch": "if-match", "ifNoneExist": "if-none-exist"}
# The order a transaction processes entries in (http.html#trules); batches keep theirs.
PROCESSING_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class Entry:
    """One Bundle entry as a request; `index` is its position in the Bundle."""

    index: int
    full_url: str | None
    method: str
    url: str
    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    body: Json | None
    assigned_id: str | None = None
    """The id a transaction chose up front for the resource this entry creates."""

    @property
    def label(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def description(self) -> str:
        return f"{self.label} ({self.method} {self.url})"

    def request(self) -> FhirRequest:
        return FhirRequest(self.method, self.path, self.params, self.headers, self.body, self.assigned_id)


def parse_entries(bundle: Json, base_url: str, prefer: str | None) -> list[Entry]:
    """The entries of a batch/transaction Bundle, 400 naming the first malformed one.

    `prefer` (the Bundle request's `Prefer` header) applies to every entry's response.
    """
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise bad_request("Bundle.entry must be a list", "Bundle.entry")
    return [_entry(i, e, base_url, prefer) for i, e in enumerate(entries)]


def _entry(index: int, entry: object, base_url: str, prefer: str | None) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(entry, dict):
        raise bad_request(f"{where} must be an object", where)
    request = entry.get("request")
    if not isinstance(request, dict):
        raise bad_request(f"{where} has no request (method and url)", f"{where}.request")
    method, url = request.get("method"), request.get("url")
    if method not in METHODS:
        raise bad_request(f"{where}.request.method must be one of {', '.join(METHODS)}, not '{method}'",
                          f"{where}.request.method")
    if not isinstance(url, str) or not url.strip():
        raise bad_request(f"{where}.request.url is missing", f"{where}.request.url")
    body = entry.get("resource")
    if method in BODY_METHODS and not isinstance(body, dict):
        raise bad_request(f"{where}: a {method} entry needs a resource", f"{where}.resource")
    headers = {header: str(request[element]) for element, header in HEADER_ELEMENTS.items() if request.get(element)}
    if prefer:
        headers["prefer"] = prefer
    path, query = _relative(url.strip(), base_url, where)
    if not path and method == "POST":
        raise bad_request(f"{where}: a Bundle entry cannot itself be a batch or transaction", f"{where}.request.url")
    full_url = entry.get("fullUrl")
    return Entry(index, full_url if isinstance(full_url, str) else None, method, url, path,
                 parse_qsl(query, keep_blank_values=True), headers, body if method in BODY_METHODS else None)


def _relative(url: str, base_url: str, where: str) -> tuple[str, str]:
    """`url` as a path relative to the base and its query; absolute URLs must be on this server."""
    if "://" in url:
        if not url.startswith(base_url.rstrip("/") + "/"):
            raise FhirError(400, "not-supported", f"{where}.request.url '{url}' is not on this server",
                            f"{where}.request.url")
        url = url[len(base_url.rstrip("/")) + 1:]
    parts = urlsplit(url)
    return parts.path.strip("/"), parts.query
