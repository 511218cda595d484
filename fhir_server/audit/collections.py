"""The collections the audit trail keeps besides the AuditEvent resources themselves."""

RESOURCE_TYPE = "AuditEvent"
OUTBOX = "audit_outbox"
"""Records written inside data transactions, waiting to be chained."""
CHAIN = "audit_chain"
"""One link per sequence number: `{_id: seq, e: event id, h: hash, t: recorded}`."""
STATE = "audit_state"
"""`head` (last sequence number and hash) and `anchor` (where pruning stopped)."""
