"""Login accounts: argon2id password hashes, a role, the linked FHIR identity, lockout with back-off.

Each account is `{_id: username, hash, role, fhir_user, disabled, failures, locked_until}`.
After `login_max_failures` failures in a row the account is locked for `login_lockout_seconds`,
doubling with each further failure; a success resets the count. A locked account fails even
with the right password, so guessing gains nothing during the lock.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo.errors import DuplicateKeyError

from fhir_server.auth.collections import USERS
from fhir_server.auth.records import Records
from fhir_server.auth.roles import ROLES
from fhir_server.config import Settings
from fhir_server.fhir.primitives import now
from fhir_server.storage import Database

_HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
_FHIR_USER = re.compile(r"(Practitioner|Patient|RelatedPerson)/[A-Za-z0-9\-.]{1,64}")
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _HASHER.hash("not a password")


class AccountError(ValueError):
    """An account that cannot be created as asked."""


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    fhir_user: str | None
    disabled: bool = False

    @property
    def patient_id(self) -> str | None:
        """The Patient a `patient`-role user is (their compartment is all they see)."""
        if self.fhir_user and self.fhir_user.startswith("Patient/"):
            return self.fhir_user.split("/", 1)[1]
        return None


def _account(doc: dict) -> Account:
    return Account(doc["_id"], doc["role"], doc.get("fhir_user"), bool(doc.get("disabled")))


class Accounts(Records[Account]):
    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__(database.collection(USERS), _account)
        self.settings = settings

    async def create(self, username: str, password: str, role: str, fhir_user: str | None = None) -> Account:
        if role not in ROLES:
            raise AccountError(f"unknown role '{role}'; roles: {', '.join(ROLES)}")
        if fhir_user is not None and not _FHIR_USER.fullmatch(fhir_user):
            raise AccountError(f"--fhir-user must be Practitioner/ID, Patient/ID or RelatedPerson/ID, "
                               f"not '{fhir_user}'")
        if role == "patient" and not (fhir_user or "").startswith("Patient/"):
            raise AccountError("a patient account needs --fhir-user Patient/ID")
        if not username or len(password) < 8:
            raise AccountError("a username and a password of at least 8 characters are required")
        digest = await asyncio.to_thread(_HASHER.hash, password)
        try:
            await self.collection.insert_one({"_id": username, "hash": digest, "role": role, "fhir_user": fhir_user,
                                              "disabled": False, "failures": 0, "locked_until": None})
        except DuplicateKeyError as error:
            raise AccountError(f"an account '{username}' exists already") from error
        return Account(username, role, fhir_user)

    async def authenticate(self, username: str, password: str) -> tuple[Account | None, str]:
        """The account if the password is right and it is usable: (account, "success"), else
        (None, "failure" | "locked")."""
        doc = await self.collection.find_one({"_id": username})
        digest = doc["hash"] if doc else _DUMMY_HASH
        try:
            good = await asyncio.to_thread(_HASHER.verify, digest, password)
        except (VerificationError, InvalidHashError):
            good = False
        if doc is None or doc.get("disabled"):
            return None, "failure"
        current = now()
        if doc.get("locked_until") and doc["locked_until"] > current:
            return None, "locked"
        if not good:
            failures = doc.get("failures", 0) + 1
            update: dict = {"failures": failures}
            beyond = failures - self.settings.login_max_failures
            if beyond >= 0:
                update["locked_until"] = current + timedelta(
                    seconds=self.settings.login_lockout_seconds * 2 ** min(beyond, 10))
            await self.collection.update_one({"_id": username}, {"$set": update})
            return None, "failure"
        await self.collection.update_one({"_id": username}, {"$set": {"failures": 0, "locked_until": None}})
        return _account(doc), "success"
