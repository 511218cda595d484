"""String normalisation shared by indexing and querying.

`fold` is the one definition of "case- and accent-insensitive" the engine uses: NFKD
decomposition, combining marks dropped, Unicode case folding. Index values and query values
both go through it, so the two always agree.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=65536)
def fold(value: str) -> str:
    """Case- and accent-folded form of `value` (`"Ärzte"` -> `"arzte"`)."""
    # Plain ASCII needs no decomposition: skipping it keeps the common case cheap.
    if value.isascii():
        return value.lower()
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
