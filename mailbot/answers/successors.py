"""What to report instead of a deleted, terminated or header code -- derived from code_entry rows.

The ONE place the engine learns successors.  Until the code-knowledge work
ships its ``successors()`` API (ICD-10-CM history, HCPCS cross-references,
unit conversions), they are derived here from the imported rows:

- ICD-10-CM header on the date -> its billable descendants valid on the date;
- ICD-10-CM code not valid on the date -> the billable codes under it that are
  valid then (a code expanded into subcodes);
- HCPCS code terminated before the date -> the HCPCS file's cross-reference
  when filled, else the codes added right after the termination for the same
  drug or item (same descriptor stem), with the unit conversion between the
  two descriptors' doses ("40 mg" -> "1 mg": one old unit = 40 new units).

Each successor says why.  Point :func:`successors` at the new API when it lands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from mailbot.answers.dose import descriptor_dose
from mailbot.answers.kb import KB

_QUALIFIER_WORDS = {"injection", "infusion", "per", "up", "to", "mg", "mcg", "ml", "cc", "units", "unit", "1",
                    "not", "otherwise", "specified", "for", "use", "the", "of", "and", "a"}
_SYNONYM_WORDS = {"hcl": "hydrochloride"}


@dataclass
class Successor:
    code: str
    title: str
    why: str
    units_per_old_unit: float | None = None   # 1 unit of the old code = this many units of the new


def successors(kb: KB, code: str, system: str) -> list[Successor]:
    """Codes to report instead of ``code`` on the KB's date, best first."""
    if system == "icd10cm":
        return _icd(kb, code)
    if system == "hcpcs":
        return _hcpcs(kb, code)
    return []


def _icd(kb: KB, code: str) -> list[Successor]:
    card = kb.card(code)
    rows = kb.rows("icd10cm", code)
    under = kb.billable_under(code)
    if not under:
        return []
    if card.get("valid_on_date") and card.get("billable") is False:
        version = card.get("version") or "ICD-10-CM"
        why = f"{code} is a header on {kb.on.isoformat()} ({version}): report a code under it"
    elif rows and rows[-1].valid_to and rows[-1].valid_to < kb.on:
        why = f"{code} ended {rows[-1].valid_to.isoformat()}; expanded into the codes under it"
    else:
        why = f"reportable under {code}"
    return [Successor(row.code, row.title, why) for row in under]


def _words(title: str) -> set[str]:
    text = re.sub(r"\([^)]*\)", " ", title.lower())
    out = set()
    for word in re.findall(r"[a-z0-9%]+(?:\.[0-9]+)?", text):
        word = _SYNONYM_WORDS.get(word, word)
        if word not in _QUALIFIER_WORDS and not re.fullmatch(r"[\d.]+", word):
            out.add(word)
    return out


def _hcpcs(kb: KB, code: str) -> list[Successor]:
    rows = kb.rows("hcpcs", code)
    if not rows:
        return []
    old = rows[-1]
    ended = old.valid_to
    if ended is None or ended >= kb.on:
        return []
    found: list[Successor] = []
    xref = str((old.notes or {}).get("xref") or "").strip()
    old_dose = descriptor_dose(old.title)
    if xref and kb.reportable(xref):
        found.append(_with_units(kb, xref, kb.title(xref), old_dose,
                                 f"{code} ended {ended.isoformat()}; the HCPCS file cross-references {xref}"))
    old_words = _words(old.title)
    # the drug or item name: the descriptor's first distinctive words
    stem_words = [w for w in _words(old.title.split(",")[1] if old.title.lower().startswith(("injection", "infusion"))
                                    and "," in old.title else old.title.split(",")[0])][:2]
    if not stem_words:
        return found
    candidates = [row for row in kb.hcpcs_titled(stem_words[:1]) if row.code != code
                  and row.valid_from >= ended - timedelta(days=400) and not row.valid_to]
    ranked = []
    for row in candidates:
        new_words = _words(row.title)
        shared = len(old_words & new_words)
        if not shared or not set(stem_words) <= new_words:
            continue
        extra = len(new_words - old_words)
        right_after = row.valid_from == ended + timedelta(days=1)
        ranked.append((-(shared * 2 - extra) - (3 if right_after else 0), row.code, row))
    for _, _, row in sorted(ranked, key=lambda item: (item[0], item[1])):
        if any(s.code == row.code for s in found):
            continue
        why = (f"{code} ended {ended.isoformat()}; {row.code} was added {row.valid_from.isoformat()} "
               f"for the same drug or item")
        found.append(_with_units(kb, row.code, row.title, old_dose, why))
    return found


def _with_units(kb: KB, code: str, title: str, old_dose, why: str) -> Successor:
    new_dose = descriptor_dose(title)
    ratio = None
    if old_dose and new_dose and old_dose.unit == new_dose.unit and new_dose.amount:
        ratio = old_dose.amount / new_dose.amount
        why += (f" ({title.split(',')[-1].strip()} per unit instead of {old_dose.text}: one unit of the old "
                f"code = {ratio:g} units)")
    return Successor(code, title, why, ratio)
