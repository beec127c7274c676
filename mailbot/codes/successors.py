"""What to report instead of a deleted, terminated or header code.

``successors(source, system, code, on)`` returns ``[{code, title, why}]``:

- an ICD-10-CM **header** on the date: its billable descendants valid then
  ("M54.5 became a header in FY2022 (2021-10-01); M54.50 added then");
- a **deleted** ICD-10-CM code: the billable codes the same release added
  that extend it or share its category, and a parent that became billable
  (a heuristic like the history README's: candidates, not equivalences);
- a code **not yet valid** on the date: the billable ancestor it was split from;
- a **terminated** HCPCS code: the file's cross-reference field where it is
  filled, and a same-drug code with another dose unit started around the
  termination, with the unit conversion computed from both descriptors'
  doses ("per 1 mg: 40 mg = 40 units").

Works on the ``code_entry`` rows of any release (through :mod:`.knowledge`),
so a newer HCPCS file imported later is used the same way.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from fractions import Fraction

from sqlmodel import Session

from mailbot.codes.knowledge import Knowledge, Row, get_knowledge

MAX_DESCENDANTS = 40
# HCPCS drug replacements: how far from the termination the new code may start
DRUG_WINDOW = timedelta(days=366)
# ", 40 mg" / ", per 1,000 units" at the end of a drug descriptor
_DOSE = re.compile(r",\s*(?:per\s+)?(?P<amount>\d[\d,]*(?:\.\d+)?)\s*(?P<unit>mg|mcg|micrograms?|gm|g|grams?|ml|cc|"
                   r"units?|iu|meq|million units)\.?\s*$", re.IGNORECASE)
# unit -> (dimension, factor to the dimension's base unit)
_UNITS = {"mg": ("mass", Fraction(1000)), "mcg": ("mass", Fraction(1)), "microgram": ("mass", Fraction(1)),
          "micrograms": ("mass", Fraction(1)), "g": ("mass", Fraction(1_000_000)), "gm": ("mass", Fraction(1_000_000)),
          "gram": ("mass", Fraction(1_000_000)), "grams": ("mass", Fraction(1_000_000)),
          "ml": ("volume", Fraction(1)), "cc": ("volume", Fraction(1)), "unit": ("unit", Fraction(1)),
          "units": ("unit", Fraction(1)), "iu": ("unit", Fraction(1)), "million units": ("unit", Fraction(1_000_000)),
          "meq": ("meq", Fraction(1))}


def successors(source: Session | Knowledge, system: str, code: str, on: date) -> list[dict[str, str]]:
    """What to report instead of ``code`` on ``on`` (empty when it is valid and billable)."""
    knowledge = get_knowledge(source)
    rows = knowledge.rows_of(system, code)
    if not rows:
        return []
    current = next((r for r in rows if r.valid_on(on)), None)
    if current is not None:
        return _descendants(knowledge, system, code, current, rows, on) if not current.billable else []
    if rows[0].valid_from > on:
        return _predecessor(knowledge, system, code, rows[0], on)
    last = rows[-1]
    if system == "icd10cm":
        return _icd_replacements(knowledge, code, last, on)
    if system == "hcpcs":
        return _hcpcs_replacements(knowledge, code, last, on)
    return []


def _fy(row_or_date) -> str:
    day = row_or_date if isinstance(row_or_date, date) else row_or_date.valid_from
    return f"FY{day.year + 1 if day.month >= 10 else day.year} ({day.isoformat()})"


def _descendants(knowledge: Knowledge, system: str, code: str, header: Row, rows, on: date) -> list[dict[str, str]]:
    became = next((r for r in reversed(rows) if r.valid_to is not None and r.valid_to < header.valid_from
                   and r.billable), None)
    out: list[dict[str, str]] = []
    stack = [code]
    while stack and len(out) < MAX_DESCENDANTS:
        parent = stack.pop(0)
        for child in knowledge.children_on(system, parent, on):
            if child.billable:
                if became is not None and child.valid_from == header.valid_from:
                    why = (f"{code} became a header in {_fy(header)}; {child.code} was added then to report "
                           "instead")
                else:
                    why = f"billable code under the header {code}"
                out.append({"code": child.code, "title": child.title, "why": why})
                if len(out) >= MAX_DESCENDANTS:
                    break
            else:
                stack.append(child.code)
    return out


def _predecessor(knowledge: Knowledge, system: str, code: str, first: Row, on: date) -> list[dict[str, str]]:
    if system != "icd10cm":
        return []
    bare = code.replace(".", "")
    for cut in range(len(bare) - 1, 2, -1):
        ancestor = f"{bare[:3]}.{bare[3:cut]}" if cut > 3 else bare[:3]
        row = knowledge.on(system, ancestor, on)
        if row is not None and row.billable:
            return [{"code": ancestor, "title": row.title,
                     "why": f"{code} starts {first.valid_from.isoformat()}; on {on.isoformat()} {ancestor} was the "
                            "billable code it was later split from"}]
    return []


def _icd_replacements(knowledge: Knowledge, code: str, last: Row, on: date) -> list[dict[str, str]]:
    start = last.valid_to + timedelta(days=1)
    bare, category = code.replace(".", ""), code[:3]
    added = [r for r in knowledge.starting("icd10cm", start) if r.code != code]
    out: list[dict[str, str]] = []
    for row in sorted(added, key=lambda r: (not r.code.replace(".", "").startswith(bare), r.code)):
        if not row.billable or row.code[:3] != category:
            continue
        earlier = [r for r in knowledge.rows_of("icd10cm", row.code) if r.valid_from < start]
        if earlier and not (earlier[-1].billable is False and bare.startswith(row.code.replace(".", ""))):
            continue  # not new that year (a retitled code), unless a parent that became billable
        if on >= start and not knowledge.on("icd10cm", row.code, on):
            continue  # itself gone by the date asked about
        how = ("extends it" if row.code.replace(".", "").startswith(bare)
               else "its parent, billable from then" if bare.startswith(row.code.replace(".", ""))
               else "same category; a candidate, choose by the documentation")
        out.append({"code": row.code, "title": row.title,
                    "why": f"{code} deleted in {_fy(start)}; {row.code} added then ({how})"})
    return out


def _dose(title: str) -> tuple[str, Fraction, str, str] | None:
    """``(drug, amount, unit, dose text)`` of a descriptor ending in a dose, else None."""
    m = _DOSE.search(title)
    if not m:
        return None
    unit = m.group("unit").lower()
    try:
        amount = Fraction(m.group("amount").replace(",", ""))
    except ValueError:
        return None
    drug = " ".join(title[: m.start()].lower().split())
    return drug, amount, unit, f"{m.group('amount')} {m.group('unit')}"


def _drug_index(knowledge: Knowledge) -> dict[str, list[str]]:
    index: dict[str, set[str]] = {}
    for code, rows in knowledge.rows.get("hcpcs", {}).items():
        for row in rows:
            dose = _dose(row.title)
            if dose:
                index.setdefault(dose[0], set()).add(code)
    return {k: sorted(v) for k, v in index.items()}


def convert(old: tuple[str, Fraction, str, str], new: tuple[str, Fraction, str, str]) -> str:
    """``per 1 mg: 40 mg = 40 units`` from both doses ("" when the units do not convert)."""
    (_, old_amount, old_unit, old_text), (_, new_amount, new_unit, new_text) = old, new
    old_dim, new_dim = _UNITS.get(old_unit), _UNITS.get(new_unit)
    if not old_dim or not new_dim or old_dim[0] != new_dim[0]:
        return ""
    units = (old_amount * old_dim[1]) / (new_amount * new_dim[1])
    shown = str(units.numerator) if units.denominator == 1 else f"{float(units):g}"
    return f"per {new_text}: {old_text} = {shown} unit{'s' if units != 1 else ''}"


def _hcpcs_replacements(knowledge: Knowledge, code: str, last: Row, on: date) -> list[dict[str, str]]:
    end = last.valid_to
    out: list[dict[str, str]] = []
    xref = str(last.notes.get("xref") or "").strip()
    if xref and xref != code:
        target = knowledge.rows_of("hcpcs", xref)
        title = target[-1].title if target else ""
        out.append({"code": xref, "title": title,
                    "why": f"{code} terminated {end.isoformat()}; the HCPCS file's cross-reference field names {xref}"})
    dose = _dose(last.title)
    if dose is None:
        return out
    for other in knowledge.extra("hcpcs_drugs", _drug_index).get(dose[0], []):
        if other == code or any(o["code"] == other for o in out):
            continue
        rows = knowledge.rows_of("hcpcs", other)
        start = next((r for r in rows if end - DRUG_WINDOW <= r.valid_from <= end + DRUG_WINDOW
                      and (r.valid_to is None or r.valid_to > end)), None)
        if start is None:
            continue
        other_dose = _dose(start.title)
        conversion = convert(dose, other_dose) if other_dose else ""
        why = (f"{code} terminated {end.isoformat()}; {other} added {start.valid_from.isoformat()} for the same "
               "drug" + (f", {conversion}" if conversion else ""))
        out.append({"code": other, "title": start.title, "why": why, "units": conversion})
    for item in out:
        item.setdefault("units", "")
        if item["code"] == xref and dose:
            target = knowledge.rows_of("hcpcs", xref)
            target_dose = _dose(target[-1].title) if target else None
            if target_dose and target_dose[0] == dose[0]:
                item["units"] = convert(dose, target_dose)
                item["why"] += f", {item['units']}" if item["units"] else ""
    return out
