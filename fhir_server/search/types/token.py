"""Token search parameters: system|code pairs, their text, and identifier types.

Stored as `{"t": tokens, "x": texts, "o": of-type}` (each bare or a list, keys left out when
empty). Each coded value contributes two tokens, `code` and `system|code` (`|code` when it has
no system), so every token query form is an equality (or, for `system|`, an anchored regular
expression) on the one multikey field `t`:

| source | code | system |
| --- | --- | --- |
| code, string, uri, id, boolean (`true`/`false`), number | the value | none |
| Coding | code | system |
| CodeableConcept | every coding | its system |
| Identifier | value | system |
| ContactPoint | value | ContactPoint.system (`phone`, `email`...) |

`x` holds folded `CodeableConcept.text`, `Coding.display` and `Identifier.type.text` for `:text`;
`o` holds `typeSystem|typeCode|value` for `Identifier` `:of-type`. `:in`/`:not-in` expand the
ValueSet from the shipped terminology (`valuesets`) into the `system|code` and `|code` tokens.
A `|` or `\\` inside a part is escaped with `\\` so `a|b` can only be read one way.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, NamedTuple

from fhir_server.search.errors import SearchError
from fhir_server.search.text import fold
from fhir_server.search.types import any_of, packed, split_escaped
from fhir_server.search.valuesets import expand


def escape(part: str) -> str:
    """A token part with `\\` and `|` escaped, as stored."""
    if "|" in part or "\\" in part:
        return part.replace("\\", "\\\\").replace("|", "\\|")
    return part


class _Collector:
    __slots__ = ("of_type", "texts", "tokens")

    def __init__(self) -> None:
        self.tokens: dict[str, None] = {}
        self.texts: dict[str, None] = {}
        self.of_type: dict[str, None] = {}

    def code(self, system: Any, code: Any) -> None:
        if code is None:
            return
        code = escape(code if type(code) is str else str(code).lower() if type(code) is bool else str(code))
        self.tokens[code] = None
        self.tokens[f"{escape(system) if type(system) is str else ''}|{code}"] = None

    def text(self, text: Any) -> None:
        if type(text) is str:
            self.texts[fold(text)] = None

    def coding(self, coding: Any) -> None:
        if type(coding) is dict:
            self.code(coding.get("system"), coding.get("code"))
            self.text(coding.get("display"))

    def concept(self, concept: dict) -> None:
        for coding in concept.get("coding", ()):
            self.coding(coding)
        self.text(concept.get("text"))

    def identifier(self, identifier: dict) -> None:
        value = identifier.get("value")
        self.code(identifier.get("system"), value)
        kind = identifier.get("type")
        if type(kind) is dict:
            self.text(kind.get("text"))
            if value is not None:
                for coding in kind.get("coding", ()):
                    if type(coding) is dict:
                        self.of_type["|".join(escape(str(p)) for p in (
                            coding.get("system", ""), coding.get("code", ""), value))] = None

    def value(self, fhir_type: str | None, value: Any) -> None:
        if type(value) is not dict:
            if type(value) in (str, bool, int, float, Decimal):
                self.code(None, value)
            return
        if fhir_type == "CodeableConcept" or (fhir_type is None and ("coding" in value or "text" in value)):
            self.concept(value)
        elif fhir_type in ("Identifier", "ContactPoint") or (fhir_type is None and "value" in value):
            self.identifier(value)
        else:
            self.coding(value)


def index(nodes: list[tuple[str | None, Any]], single: bool) -> dict | None:
    """`{"t": tokens, "x": texts, "o": of-type}` for the values an expression yielded."""
    c = _Collector()
    for fhir_type, value in nodes:
        c.value(fhir_type, value)
    if not c.tokens and not c.texts:
        return None
    out: dict[str, Any] = {}
    for key, values in (("t", c.tokens), ("x", c.texts), ("o", c.of_type)):
        if values:
            out[key] = packed(values)
    return out


class TokenValue(NamedTuple):
    """A parsed token query value; `system` is None when the value had no `|`."""

    system: str | None
    code: str | None
    type_system: str | None = None  # :of-type only
    text: str | None = None  # :text only
    members: tuple[str, ...] = ()  # :in / :not-in: the stored tokens of the ValueSet's codes


def parse(raw: str, modifier: str | None) -> TokenValue:
    """`code`, `system|code`, `|code`, `system|`; `:of-type` takes `system|code|value`."""
    if modifier == "text":
        return TokenValue(None, None, text=split_escaped(raw, "")[0])
    if modifier in ("in", "not-in"):
        return TokenValue(None, None, members=_members(split_escaped(raw, "")[0]))
    parts = split_escaped(raw, "|")
    if modifier == "of-type":
        if len(parts) != 3 or not all(parts):
            raise SearchError("", f"of-type needs system|code|value, got {raw!r}")
        return TokenValue(parts[1], parts[2], type_system=parts[0])
    if len(parts) > 2:
        raise SearchError("", f"too many '|' in token {raw!r}")
    if len(parts) == 1:
        if not parts[0]:
            raise SearchError("", "empty token")
        return TokenValue(None, parts[0])
    return TokenValue(parts[0], parts[1] or None)


def _members(url: str) -> tuple[str, ...]:
    codes = expand(url)
    if codes is None:
        raise SearchError("", f"cannot expand ValueSet {url!r} here")
    # A plain `code` element is stored without a system (`|code`): the ValueSet gives it one.
    return tuple(sorted({f"{escape(system)}|{escape(code)}" for system, code in codes}
                        | {f"|{escape(code)}" for _, code in codes}))


def _token_condition(value: TokenValue) -> tuple[str, Any]:
    """("eq", token) for an exact stored token, ("re", pattern) for `system|` (any code)."""
    if value.system is None:
        return "eq", escape(value.code)
    if value.code is None:
        return "re", "^" + re.escape(escape(value.system) + "|")
    return "eq", f"{escape(value.system)}|{escape(value.code)}"


def match(field: str, single: bool, modifier: str | None, values: list[TokenValue], key: str = "t") -> dict:
    """Any of `values` (default and `:not`, `:text`, `:of-type`) against the tokens at `field`.

    `key` names the token list inside `field` (`i` for a reference's identifiers).
    """
    tokens = f"{field}.{key}"
    if modifier == "text":
        return any_of([{f"{field}.x": {"$regex": "^" + re.escape(fold(v.text or ""))}} for v in values])
    if modifier in ("in", "not-in"):
        members = sorted({m for v in values for m in v.members})
        return {tokens: {"$in" if modifier == "in" else "$nin": members}}
    if modifier == "of-type":
        keys = ["|".join(escape(p) for p in (v.type_system, v.system, v.code)) for v in values]
        return {f"{field}.o": keys[0] if len(keys) == 1 else {"$in": keys}}
    conditions = [_token_condition(v) for v in values]
    equal = [t for kind, t in conditions if kind == "eq"]
    patterns = [{"$regex": t} for kind, t in conditions if kind == "re"]
    if modifier == "not":
        # Resources with no value at all match :not too: $nin and $not also match a missing field.
        out = [{tokens: {"$nin": equal}}] if equal else []
        out += [{tokens: {"$not": p}} for p in patterns]
        return out[0] if len(out) == 1 else {"$and": out}
    filters = [{tokens: p} for p in patterns]
    if equal:
        filters.insert(0, {tokens: equal[0] if len(equal) == 1 else {"$in": equal}})
    return any_of(filters)
