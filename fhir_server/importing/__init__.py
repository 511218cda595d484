"""Bulk import: `fhir-server import PATH...` loads Bundles and NDJSON files into the server.

`sources` turns files into transaction Bundles (a registry of source formats, `--from`),
`commands` is the CLI and `loader` writes the Bundles through the normal interaction code;
`splitting` loads a transaction too large to commit at once as several, `skipping` leaves out
invalid resources (`--skip-invalid`).
"""
