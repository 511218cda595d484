"""The internal collections of the authorization server and their indexes (TTL for short-lived ones)."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from fhir_server.storage import Database

KEYS = "auth_keys"
USERS = "auth_users"
CLIENTS = "auth_clients"
CODES = "auth_codes"
"""Authorization codes: single use, minutes."""
REFRESH = "auth_refresh"
REVOKED = "auth_revoked"
"""Revoked access-token ids, kept until the token would have expired anyway."""
ASSERTIONS = "auth_assertion_jti"
"""`jti`s of client assertions already used (replay refused)."""
LAUNCHES = "auth_launch"
REQUESTS = "auth_requests"
"""Authorization requests between the login page and the consent page."""

_EXPIRING = (CODES, REFRESH, REVOKED, ASSERTIONS, LAUNCHES, REQUESTS)


async def ensure_indexes(database: Database) -> None:
    """TTL indexes on `expires`, so used-up and expired entries disappear by themselves."""
    for name in _EXPIRING:
        await database.collection(name).create_indexes(
            [IndexModel([("expires", ASCENDING)], name="ttl", expireAfterSeconds=0)])
