"""FHIR interactions, independent of HTTP: one module per interaction of the RESTful API page.

A `FhirRequest` (method, path, parameters, headers, parsed body) goes in, a `FhirResponse`
(status, resource, headers, the version touched) comes out. The HTTP adapter (`api`) and the
Bundle processor build requests the same way, so every interaction behaves identically
standalone and inside a batch or transaction. `dispatch.perform` is the single entry point.
"""
