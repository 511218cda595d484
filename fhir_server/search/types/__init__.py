"""One module per search parameter type, each owning both sides of that type.

Every module offers the same three functions:

- `index(nodes, single)` turns the nodes an expression yielded into the value stored under
  `sp.<code>` (None when there is nothing to index; `single` says the parameter holds at most
  one value, so range-shaped types store one sub-document instead of a list);
- `parse(raw, modifier)` turns one query value (already split on `,` and unescaped where the type
  wants it) into that type's query value, raising `SearchError` on malformed input;
- `match(field, single, modifier, values)` builds the MongoDB filter on `field` matching any of
  the parsed `values` (FHIR's comma OR).

`packed` is the storage convention shared by all of them: one value is stored bare, several as
a list, which keeps single-valued parameters usable in compound indexes. `split_escaped` is
the one reader of FHIR's `\\` escapes (`\\,` `\\$` `\\|` `\\\\`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def packed(values: dict[Any, None] | list) -> Any:
    """None for no values, the value itself for one, a list for several."""
    if not values:
        return None
    if len(values) == 1:
        return next(iter(values))
    return list(values)


def any_of(filters: list[dict]) -> dict:
    """The OR of MongoDB filters, without a `$or` wrapper for a single one."""
    return filters[0] if len(filters) == 1 else {"$or": filters}


def scoped(field: str, single: bool, values: list, build: Callable[[str, Any], dict]) -> dict:
    """Any of `values` against range-shaped sub-documents stored at `field`.

    `build(prefix, value)` writes the conditions with keys `prefix + "s"`... For a single-valued
    parameter they address `field.s` directly; for a list they sit inside one `$elemMatch`, so
    all of a value's conditions hold on the same stored element.
    """
    if single:
        return any_of([build(f"{field}.", v) for v in values])
    return element_match(field, [build("", v) for v in values])


def element_match(field: str, conditions: list[dict]) -> dict:
    """Any of `conditions`, each holding within one element of the array at `field`.

    Each condition is rewritten as an OR of flat conjunctions, one `$elemMatch` apiece: an
    element satisfies (A or B) exactly when one satisfies A or one satisfies B, and flat
    `$elemMatch` documents are what every MongoDB-compatible server (SecantusDB included) and
    multikey index bounds handle best.
    """
    return any_of([{field: {"$elemMatch": c}} for condition in conditions for c in conjunctions(condition)])


def _merge_conjunction(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, cond in b.items():
        if key not in out:
            out[key] = cond
            continue
        left = out[key] if isinstance(out[key], dict) else {"$eq": out[key]}
        right = cond if isinstance(cond, dict) else {"$eq": cond}
        out[key] = {**left, **right}
    return out


def conjunctions(condition: dict) -> list[dict]:
    """`condition` in disjunctive normal form: a list of flat (no `$or`/`$and`) conjunctions."""
    result: list[dict] = [{}]
    for key, value in condition.items():
        if key == "$or":
            options = [c for alternative in value for c in conjunctions(alternative)]
        elif key == "$and":
            options = [{}]
            for part in value:
                options = [_merge_conjunction(o, c) for o in options for c in conjunctions(part)]
        else:
            options = [{key: value}]
        result = [_merge_conjunction(r, o) for r in result for o in options]
    return result


def split_escaped(raw: str, separator: str, keep_escapes: bool = False) -> list[str]:
    """`raw` split on `separator` where not escaped by `\\`; an empty separator only unescapes.

    With `keep_escapes` the other escapes stay in the parts (for values parsed again later, such
    as the components of a composite value); the escaped separator itself is always unescaped.
    """
    parts, current, i = [], [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            current.append(nxt if (nxt == separator or not keep_escapes) else ch + nxt)
            i += 2
            continue
        if separator and ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts
