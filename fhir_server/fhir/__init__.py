"""FHIR building blocks used by every layer: errors as OperationOutcomes, ids, instants."""
