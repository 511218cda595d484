"""Applying PATCH documents to FHIR resources.

Owns the two patch formats the server accepts, as pure functions on resource JSON: JSON Patch
(RFC 6902) and FHIRPath Patch (a Parameters resource, hl7.org/fhir/R4/fhirpatch.html). Both return
a new resource and leave their input untouched; both raise `PatchError`, whose `kind` says
whether the document is malformed ("invalid", HTTP 400) or cannot be applied ("processing", 422).
Storage, HTTP and validation of the result are other packages' business.
"""

from fhir_server.patch.errors import PatchError
from fhir_server.patch.fhirpath_patch import apply_fhirpath_patch
from fhir_server.patch.json_patch import apply_json_patch

__all__ = ["PatchError", "apply_fhirpath_patch", "apply_json_patch"]
