"""What MongoDB's write errors mean to the store's callers."""

from __future__ import annotations

from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


def only_duplicate_keys(error: BulkWriteError) -> bool:
    """Whether every document an `insert_many` refused was refused for a key already taken."""
    return {e.get("code") for e in error.details.get("writeErrors", ())} == {DUPLICATE_KEY}
