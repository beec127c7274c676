"""What to report instead of a deleted, terminated or header code -- the engine's view of the history API.

The one source of truth is :func:`mailbot.codes.successors.successors` (the
ICD-10-CM history FY2016-FY2027, header descendants, HCPCS cross-references
and same-drug replacements with their unit conversion, e.g. J1030 -> J1010
"per 1 mg: 40 mg = 40 units").  This module only turns its rows into
:class:`Successor` objects with the conversion as a number, so the units
resolver can bill the new code (one old unit = ``units_per_old_unit`` new
units).  No successor logic lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.answers.kb import KB

# "per 1 mg: 40 mg = 40 units", "per 0.1 mg: 1 mg = 10 units" (mailbot.codes.successors.convert)
_CONVERSION = re.compile(r"=\s*(?P<units>\d+(?:\.\d+)?)\s*units?\b")


@dataclass
class Successor:
    code: str
    title: str
    why: str
    units_per_old_unit: float | None = None   # 1 unit of the old code = this many units of the new


def successors(kb: KB, code: str, system: str) -> list[Successor]:
    """Codes to report instead of ``code`` on the KB's date, best first (from the history API)."""
    from mailbot.codes.successors import successors as history_successors

    if system not in ("icd10cm", "hcpcs"):
        return []
    out = []
    for item in history_successors(kb.session, system, code, kb.on):
        m = _CONVERSION.search(str(item.get("units") or ""))
        out.append(Successor(item["code"], item.get("title") or "", item.get("why") or "",
                             float(m.group("units")) if m else None))
    return out
