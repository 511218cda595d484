"""The HTTP adapter: turns HTTP requests into `FhirRequest`s and `FhirResponse`s into HTTP.

Owns content negotiation (`Accept`, `_format`, `_pretty`, request content types), body size
limits, the FHIR catch-all route and the non-FHIR endpoints (`/healthz`, `/readyz`).
"""
