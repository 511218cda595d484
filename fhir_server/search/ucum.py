"""Just enough UCUM to compare quantities written in different units of one dimension.

`canonical("mg/dL")` returns `("g/L", 0.01)`: the unit expressed in base units and the factor
to multiply values by. Units are parsed as `numerator[/denominator]`, each a product of atoms
separated by `.`, each atom optionally prefixed (`m`, `u`, `k`...). Covered: mass (g, [lb_av],
[oz_av]), volume (L, l), length (m, [in_i], [ft_i]), time (s, min, h, d, wk, mo, a), amount
(mol, eq), pressure (Pa, mm[Hg]) and their quotients (mmol/L, mg/dL, /min...). Temperature is
not proportional (Cel vs [degF]), and anything else is not canonicalised: such quantities are
matched on their own system and code only.
"""

from __future__ import annotations

import re
from functools import lru_cache

UCUM = "http://unitsofmeasure.org"

_PREFIXES = {"Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3,
             "h": 1e2, "da": 1e1, "d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6, "n": 1e-9,
             "p": 1e-12, "f": 1e-15}
# Metric atoms take prefixes; the others do not. Values are (base unit, factor).
_METRIC = {"g": ("g", 1.0), "L": ("L", 1.0), "l": ("L", 1.0), "m": ("m", 1.0), "s": ("s", 1.0),
           "mol": ("mol", 1.0), "eq": ("eq", 1.0), "Pa": ("Pa", 1.0)}
_PLAIN = {"min": ("s", 60.0), "h": ("s", 3600.0), "d": ("s", 86400.0), "wk": ("s", 604800.0),
          "mo": ("s", 2629800.0), "a": ("s", 31557600.0), "[in_i]": ("m", 0.0254),
          "[ft_i]": ("m", 0.3048), "[lb_av]": ("g", 453.59237), "[oz_av]": ("g", 28.349523125),
          "mm[Hg]": ("Pa", 133.322387415), "1": ("", 1.0)}
_ATOM = re.compile(r"^(.*?)(\d*)$")


def _atom(text: str) -> tuple[str, float] | None:
    m = _ATOM.match(text)
    name, power = m.group(1), int(m.group(2) or 1)
    found = _PLAIN.get(name) or _METRIC.get(name)
    if found is None:
        for prefix, factor in _PREFIXES.items():
            if name.startswith(prefix) and (metric := _METRIC.get(name[len(prefix):])):
                found = (metric[0], metric[1] * factor)
                break
    if found is None:
        return None
    base, factor = found
    return (base + (str(power) if power != 1 else "") if base else ""), factor ** power


def _product(text: str) -> tuple[list[str], float] | None:
    units, total = [], 1.0
    for part in text.split(".") if text else []:
        atom = _atom(part)
        if atom is None:
            return None
        if atom[0]:
            units.append(atom[0])
        total *= atom[1]
    return units, total


@lru_cache(maxsize=4096)
def canonical(code: str) -> tuple[str, float] | None:
    """`(canonical unit, factor)` for a UCUM code this module understands, else None."""
    numerator, _, denominator = code.partition("/")
    if "/" in denominator:
        return None
    top, bottom = _product(numerator), _product(denominator)
    if top is None or bottom is None:
        return None
    unit = ".".join(sorted(top[0])) + ("/" + ".".join(sorted(bottom[0])) if bottom[0] else "")
    return unit, top[1] / bottom[1]
