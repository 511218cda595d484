"""The second validation pass: fhir.resources' R4B pydantic models, where they match R4.

Owns which R4 resource types the R4B models may judge (`r4b_model_types()`) and the translation
of pydantic errors into `Issue`s. The pass runs after the strict walker found no error; what it
adds are value checks the R4 regexes cannot express, such as real calendar dates ("2021-02-30")
and decodable base64.

How the R4B/R4 mismatch was decided: every R4 resource type's compiled element tree
(`fhir_server.definitions.model`) was compared with the fields of its R4B model class (JSON
names, array or not, type, required), recursively through backbone elements and data types.
tests/test_validation_structure.py repeats that comparison, so a fhir.resources upgrade that
changes the outcome fails the suite. It found:

- 18 R4 types with no R4B model (`_NO_R4B_MODEL`): R4B removed or replaced them;
- 2 types R4B reshaped (`_RESHAPED`): R4 elements are missing or typed differently in R4B;
- data-type differences shared by all types, handled per error (`_FALSE_REJECTIONS`): R4B has no
  `Meta` choice (`Extension.valueMeta`, `ElementDefinition.fixedMeta`...) and accepts only
  version-4 UUIDs, where R4's `uuid` is any RFC 4122 UUID. Elements R4B added are harmless: the
  strict walker rejects them first.

Checked against the official R4 examples: all 688 structurally valid examples of these types
(and the Bundles holding them) pass the R4B models.
"""

from __future__ import annotations

from functools import cache

from pydantic import ValidationError

from fhir_server.definitions import resource_types
from fhir_server.validation.issue import Issue

_NO_R4B_MODEL = frozenset({
    "EffectEvidenceSynthesis", "MedicinalProduct", "MedicinalProductAuthorization",
    "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
    "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "RiskEvidenceSynthesis",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
    "SubstanceSourceMaterial", "SubstanceSpecification",
})
_RESHAPED = frozenset({"Evidence", "EvidenceVariable"})
# pydantic error types R4B raises for content that is valid R4 (see the module docstring):
# `extra_forbidden` can only mean an R4 element R4B lacks, since the strict walker has already
# accepted every property.
_FALSE_REJECTIONS = frozenset({"extra_forbidden", "uuid_version"})


@cache
def r4b_model_types() -> frozenset[str]:
    """The R4 resource types also validated with their fhir.resources R4B model."""
    return frozenset(resource_types()) - _NO_R4B_MODEL - _RESHAPED


def validate_with_r4b(resource: dict) -> list[Issue]:
    """Validate a structurally valid R4 resource of an `r4b_model_types()` type with its R4B
    model; its own and its nested resources' types must all be in `r4b_model_types()`."""
    # Imported on first use: the package takes 0.15 s to import, each model class more.
    from fhir.resources.R4B import get_fhir_model_class

    resource_type = resource["resourceType"]
    try:
        get_fhir_model_class(resource_type).model_validate(resource)
    except ValidationError as error:
        return [
            Issue("error", "required" if e["type"] == "missing" else "value",
                  e["msg"], _expression(resource_type, e["loc"]))
            for e in error.errors() if e["type"] not in _FALSE_REJECTIONS
        ]
    return []


def _expression(resource_type: str, loc: tuple[int | str, ...]) -> str:
    parts = [resource_type]
    for step in loc:
        parts.append(f"[{step}]" if isinstance(step, int) else f".{step}")
    return "".join(parts)
