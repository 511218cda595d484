"""Batch and transaction Bundles (hl7.org/fhir/R4/http.html#transaction).

`entries` turns a Bundle's entries into requests, `references` resolves the references between
them, `transaction` and `batch` perform them through `dispatch.perform` (so every entry is
checked, audited and answered like the same request sent alone) and `responses` builds the
response Bundle. The interaction handler for `POST [base]` is `interactions.bundle`.
"""
