"""Token signing keys, generated on first start and kept in the database, with rotation.

The newest key signs; a rotated-out key stays published in the JWKS (and accepted) until every
token it signed has expired (`retire_at`). Several server processes share the keys through the
collection; each reloads them at most every few seconds, when it signs, publishes the JWKS or
meets a `kid` it does not know.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from joserfc.jwk import KeySet, RSAKey

from fhir_server.auth.collections import KEYS
from fhir_server.fhir.primitives import new_id, now
from fhir_server.storage import Database

ALGORITHM = "RS256"
"""Access and id tokens are signed with RS256, which every OpenID Connect client supports."""
_RELOAD_SECONDS = 5.0


class KeyRing:
    """The signing keys: `signing` signs, `public` verifies and is published at /auth/jwks."""

    def __init__(self, database: Database) -> None:
        self.collection = database.collection(KEYS)
        self.keys: list[RSAKey] = []
        self.public = KeySet([])
        self.loaded_at = 0.0

    @property
    def signing(self) -> RSAKey:
        return self.keys[0]

    async def load(self) -> None:
        """Read the published keys; create the first one if there is none yet."""
        docs = await self._published()
        if not docs:
            await self.rotate(grace_seconds=0)
            docs = await self._published()
        self.keys = [RSAKey.import_key(d["jwk"]) for d in docs]
        self.public = KeySet([RSAKey.import_key(k.as_dict(private=False)) for k in self.keys])
        self.loaded_at = time.monotonic()

    async def reload_if_stale(self) -> bool:
        """Reload when the keys were read more than a few seconds ago (a token named an unknown kid)."""
        if time.monotonic() - self.loaded_at < _RELOAD_SECONDS:
            return False
        await self.load()
        return True

    async def rotate(self, grace_seconds: int) -> str:
        """Make a new signing key; current keys stay published `grace_seconds` (the longest token life)."""
        stamp = now()
        await self.collection.update_many({"retire_at": None},
                                          {"$set": {"retire_at": stamp + timedelta(seconds=grace_seconds)}})
        kid = new_id()
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": ALGORITHM}, private=True)
        await self.collection.insert_one({"_id": kid, "created": stamp, "retire_at": None,
                                          "jwk": key.as_dict(private=True)})
        if self.keys:
            await self.load()
        return kid

    async def _published(self) -> list[dict]:
        current: datetime = now()
        cursor = self.collection.find({"$or": [{"retire_at": None}, {"retire_at": {"$gt": current}}]})
        return sorted(await cursor.to_list(length=None), key=lambda d: d["created"], reverse=True)
