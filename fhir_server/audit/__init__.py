"""Audit: an IHE BALP AuditEvent for every FHIR interaction and security event, hash-chained.

- `record`: the neutral facts of one audited event (who, what, where, outcome).
- `balp`: turns a record into R4 AuditEvents following the IHE Basic Audit Log Patterns.
- `chain`: canonical JSON, the SHA-256 chain extension and its verification.
- `log`: `AuditLog`, the durable write path and the per-process sealer that chains events.
- `export`, `retention`, `commands`: NDJSON/CSV export, pruning with a chain anchor, the CLI.

Design and one real example of each kind of event: `docs/audit.md`.
"""
