"""Conversions between the clinic's original domain records (MedicalCycle Cloud) and FHIR R4."""
