"""Billing units: the dose stated against the dose in a HCPCS descriptor.

``descriptor_dose("Injection, methylprednisolone acetate, 1 mg")`` -> 1 mg per
unit; ``units_for(40 mg, 1 mg)`` -> 40.  CMS rounds a partial unit up ("up to
50 mg" with 25 mg given is 1 unit; 1 g of a "per 250 mg" drug is 4 units).
Units convert within mass (g, mg, mcg) and volume (l, ml); "units" (IU) stand alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_TO_BASE = {"g": ("mass", 1_000_000.0), "mg": ("mass", 1_000.0), "mcg": ("mass", 1.0),
            "l": ("volume", 1000.0), "ml": ("volume", 1.0), "units": ("units", 1.0), "meq": ("meq", 1.0)}
_UNIT = {"mg": "mg", "mcg": "mcg", "microgram": "mcg", "micrograms": "mcg", "g": "g", "gm": "g", "gram": "g",
         "grams": "g", "ml": "ml", "cc": "ml", "unit": "units", "units": "units", "iu": "units", "meq": "meq",
         "l": "l"}
_DESCRIPTOR = re.compile(r"(?:(per|up to)\s+)?(\d+(?:,\d{3})*(?:\.\d+)?)\s*(mg|mcg|micrograms?|gm|grams?|g|ml|cc|"
                         r"units?|iu|meq|l)\b(?!\s*/)", re.I)


@dataclass
class DescriptorDose:
    amount: float
    unit: str
    text: str           # as printed: "1 mg", "up to 50 mg", "per 250 mg"
    up_to: bool = False


def descriptor_dose(title: str) -> DescriptorDose | None:
    """The dose one unit of the code stands for, from its descriptor (the last dose printed
    outside parentheses), or None (per dose / per vial / unclassified)."""
    text = re.sub(r"\([^)]*\)", " ", title or "")
    found = list(_DESCRIPTOR.finditer(text))
    if not found:
        return None
    m = found[-1]
    unit = _UNIT.get(m.group(3).lower())
    if unit is None:
        return None
    return DescriptorDose(float(m.group(2).replace(",", "")), unit, m.group(0).strip(),
                          up_to=(m.group(1) or "").lower() == "up to")


def convert(amount: float, unit: str, to: str) -> float | None:
    """``amount`` of ``unit`` in ``to`` units, or None when they do not convert."""
    a, b = _TO_BASE.get(unit), _TO_BASE.get(to)
    if not a or not b or a[0] != b[0]:
        return None
    return amount * a[1] / b[1]


def units_for(amount: float, unit: str, per: DescriptorDose) -> int | None:
    """Billing units for ``amount`` ``unit`` of a code whose one unit is ``per``."""
    value = convert(amount, unit, per.unit)
    if value is None or per.amount <= 0:
        return None
    # round up a partial unit; a tiny float error (0.3 / 0.1 = 2.9999...) is not a partial unit
    return max(1, math.ceil(round(value / per.amount, 6)))
