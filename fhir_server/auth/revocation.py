"""Revoked access tokens: a shared MongoDB list (TTL-indexed) with a short in-process cache.

Access tokens are verified without a database round trip; the revoked `jti`s are re-read at most
every `REFRESH_SECONDS`, so a revocation made by another server process takes effect within
that time, and one made by this process at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fhir_server.auth.collections import REVOKED
from fhir_server.fhir.primitives import now
from fhir_server.storage import Database

REFRESH_SECONDS = 2.0


class RevocationList:
    def __init__(self, database: Database) -> None:
        self.collection = database.collection(REVOKED)
        self.revoked: set[str] = set()
        self.read_at = float("-inf")

    async def revoke(self, jti: str, exp: int) -> None:
        expires = datetime.fromtimestamp(exp, UTC)
        await self.collection.update_one({"_id": jti}, {"$set": {"expires": expires}}, upsert=True)
        self.revoked.add(jti)

    async def is_revoked(self, jti: str) -> bool:
        if time.monotonic() - self.read_at > REFRESH_SECONDS:
            cursor = self.collection.find({"expires": {"$gt": now()}}, {"_id": 1})
            self.revoked = {d["_id"] for d in await cursor.to_list(length=None)}
            self.read_at = time.monotonic()
        return jti in self.revoked
