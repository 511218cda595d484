"""MedicalCycle FHIR: a FHIR R4 server on MongoDB.

Packages, in the order a request flows through them:
`api` (HTTP adapter) -> `interactions` (one module per FHIR interaction) -> `storage` (the only
code that knows MongoDB). `definitions` holds the official R4 definitions the rest is driven by;
`validation` checks resources against them.
"""

__version__ = "0.1.0"
FHIR_VERSION = "4.0.1"
