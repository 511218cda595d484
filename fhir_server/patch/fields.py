"""Editing one JSON property of a FHIR resource together with its primitive extensions.

Owns the FHIR JSON rule that a primitive's id and extensions live in a sibling `_name` property
(an array aligned with the values, `null` where a value has none) and the rule that empty arrays
and objects are not written: every edit keeps both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Value:
    """A value to write: its JSON, and for a primitive the `_name` object that goes with it."""

    json: Any
    companion: Json | None = None


@dataclass(frozen=True, eq=False)
class Field:
    """The property `key` of the JSON object `owner`, repeating or not."""

    owner: Json
    key: str

    def same_as(self, other: Field | None) -> bool:
        """Whether `other` is this very property (of this very object, not an equal one)."""
        return other is not None and other.owner is self.owner and other.key == self.key

    @property
    def companion_key(self) -> str:
        return "_" + self.key

    def items(self) -> list[Any]:
        value = self.owner.get(self.key)
        return value if isinstance(value, list) else []

    def companion(self, index: int | None) -> Json | None:
        """The `_name` object (id and extensions) of the primitive at `index`, if it has one."""
        if index is None:
            return self.owner.get(self.companion_key)
        companions = self._companions()
        return companions[index] if companions is not None else None

    def ensure_companion(self, index: int | None) -> Json:
        """`companion(index)`, created empty when missing."""
        if index is None:
            return self.owner.setdefault(self.companion_key, {})
        companions = self._ensure_companions()
        companion = companions[index] = companions[index] or {}
        return companion

    def set(self, value: Value, index: int | None = None) -> None:
        if index is None:
            self.owner[self.key] = value.json
            if value.companion is None:
                self.owner.pop(self.companion_key, None)
            else:
                self.owner[self.companion_key] = value.companion
        else:
            self.owner[self.key][index] = value.json
            self._set_companion_at(index, value.companion)

    def insert(self, index: int, value: Value) -> None:
        companions = self._ensure_companions() if value.companion is not None else self._companions()
        if companions is not None:
            companions.insert(index, value.companion)
        self.owner.setdefault(self.key, []).insert(index, value.json)
        self._tidy()

    def append(self, value: Value) -> None:
        self.insert(len(self.items()), value)

    def pop(self, index: int) -> Value:
        companions = self._companions()
        companion = companions.pop(index) if companions is not None else None
        json = self.owner[self.key].pop(index)
        self._tidy()
        return Value(json, companion)

    def delete(self, index: int | None) -> None:
        if index is None:
            self.owner.pop(self.key, None)
            self.owner.pop(self.companion_key, None)
        else:
            self.pop(index)

    def drop_companion(self, index: int | None) -> None:
        """Forget the id and extensions of the primitive at `index`, keeping its value."""
        if index is None:
            self.owner.pop(self.companion_key, None)
        else:
            self._set_companion_at(index, None)

    def _set_companion_at(self, index: int, companion: Json | None) -> None:
        companions = self._ensure_companions() if companion is not None else self._companions()
        if companions is not None:
            companions[index] = companion
            self._tidy()

    def _companions(self) -> list[Json | None] | None:
        """The `_name` array, if there is one, padded with nulls to one entry per value."""
        return self._ensure_companions() if isinstance(self.owner.get(self.companion_key), list) else None

    def _ensure_companions(self) -> list[Json | None]:
        companions: list[Json | None] = self.owner.setdefault(self.companion_key, [])
        companions.extend([None] * (len(self.items()) - len(companions)))
        return companions

    def _tidy(self) -> None:
        if self.key in self.owner and not self.owner[self.key]:
            del self.owner[self.key]
        companions = self.owner.get(self.companion_key)
        if isinstance(companions, list) and not any(companions):
            del self.owner[self.companion_key]
