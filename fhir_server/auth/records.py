"""What accounts and clients have in common: a collection of records keyed by name, which an
operator lists and disables (disabled records are kept, so names are never reused by accident)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from pymongo.asynchronous.collection import AsyncCollection

T = TypeVar("T")


class Records(Generic[T]):
    def __init__(self, collection: AsyncCollection, from_doc: Callable[[dict], T]) -> None:
        self.collection = collection
        self.from_doc = from_doc

    async def get(self, key: str) -> T | None:
        """The record called `key`, unless it is unknown or disabled."""
        doc = await self.collection.find_one({"_id": key})
        return self.from_doc(doc) if doc and not doc.get("disabled") else None

    async def list(self) -> list[T]:
        return [self.from_doc(d) for d in await self.collection.find().sort("_id").to_list(length=None)]

    async def disable(self, key: str) -> bool:
        result = await self.collection.update_one({"_id": key}, {"$set": {"disabled": True}})
        return result.matched_count == 1
