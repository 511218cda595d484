"""The prescription workflow: the `$dispense` operation on MedicationRequest and the expiry of
prescriptions past their validity period (`docs/prescriptions.md`)."""
