"""How many units: the dose given against the dose one unit of the HCPCS code stands for.

The drug is the HCPCS code the question names (or its successor), else the
drug it names: a brand or generic name, matched to the HCPCS descriptors
through the table below (brand -> the descriptor's words).  Units are the
dose divided by the descriptor's dose, a partial unit rounded up; a stated
discarded amount becomes its own line with JW.  A dose missing for a drug
code is asked for, once.
"""

from __future__ import annotations

import re

from mailbot.answers.dose import descriptor_dose, units_for
from mailbot.answers.kb import KB
from mailbot.answers.model import ALTERNATIVE, RECOMMENDED, Answer, Line

# Names coders and charts use -> words every matching HCPCS descriptor holds.
# (From the drugs' labels; the HCPCS descriptors name the generic.)
DRUG_NAMES: dict[str, tuple[str, ...]] = {
    "kenalog": ("triamcinolone acetonide", "not otherwise specified"),
    "triamcinolone": ("triamcinolone acetonide", "not otherwise specified"),
    "depo-medrol": ("methylprednisolone acetate",), "depomedrol": ("methylprednisolone acetate",),
    "methylprednisolone acetate": ("methylprednisolone acetate",),
    "solu-medrol": ("methylprednisolone sodium succinate",), "solumedrol": ("methylprednisolone sodium succinate",),
    "rocephin": ("ceftriaxone",), "ceftriaxone": ("ceftriaxone",),
    "toradol": ("ketorolac",), "ketorolac": ("ketorolac",),
    "prolia": ("denosumab",), "xgeva": ("denosumab",), "denosumab": ("denosumab",),
    "avastin": ("bevacizumab",), "bevacizumab": ("bevacizumab",),
    "botox": ("onabotulinumtoxina",),
    "phenergan": ("promethazine",), "promethazine": ("promethazine",),
    "zofran": ("ondansetron",), "ondansetron": ("ondansetron",),
    "decadron": ("dexamethasone sodium phosphate",), "dexamethasone": ("dexamethasone sodium phosphate",),
    "b12": ("cyanocobalamin",), "b-12": ("cyanocobalamin",), "cyanocobalamin": ("cyanocobalamin",),
    "lovenox": ("enoxaparin",), "enoxaparin": ("enoxaparin",),
    "dilaudid": ("hydromorphone",), "hydromorphone": ("hydromorphone",),
    "epinephrine": ("epinephrine", "0.1 mg"), "adrenalin": ("epinephrine", "0.1 mg"),
    "morphine": ("morphine sulfate",), "fentanyl": ("fentanyl",),
    "carboplatin": ("carboplatin",), "paclitaxel": ("paclitaxel",), "taxol": ("paclitaxel",),
    "normal saline": ("normal saline",), "insulin": ("insulin", "per 5 units"),
    "benadryl": ("diphenhydramine",), "lidocaine": ("lidocaine hydrochloride",),
    "solu-cortef": ("hydrocortisone sodium succinate",), "remicade": ("infliximab",),
}
_NAME = re.compile(r"\b(" + "|".join(sorted((re.escape(n) for n in DRUG_NAMES), key=len, reverse=True)) + r")\b",
                   re.I)


def resolve(kb: KB, facts, answer: Answer) -> None:
    drugs = [line for line in answer.recommended if line.system == "hcpcs" and descriptor_dose(line.title)]
    if not drugs:
        drugs = _by_name(kb, facts, answer)
    given = facts.given_dose
    for line in drugs:
        per = descriptor_dose(line.title)
        if per is None:
            continue
        replaced = (answer.facts.get("replaced") or {}).get(line.code)
        if given is None and facts.billed_units is not None:
            line.units = facts.billed_units
            answer.rule(f"{line.code} is billed per {per.text}: {facts.billed_units} units stand for "
                        f"{facts.billed_units * per.amount:g} {per.unit}", f"HCPCS descriptor, {line.version}")
            continue
        if given is not None:
            units = units_for(given.amount, given.unit, per)
            if units is None:
                answer.ask_once(f"What dose of {line.code} was given? {given.text} does not convert to "
                                f"{per.text}, the dose in its descriptor.")
                continue
            line.units = units
            answer.rule(f"{line.code} is billed per {per.text}: {given.text} = {units} unit"
                        f"{'s' if units != 1 else ''}" + (" (a partial unit rounds up)" if per.up_to else ""),
                        f"HCPCS descriptor, {line.version or 'HCPCS Level II'}")
        elif replaced:
            line.units = max(1, round(replaced["units_per_old_unit"]))
            answer.rule(f"one unit of {replaced['old']} = {line.units} units of {line.code} ({per.text} per unit)",
                        f"HCPCS descriptors, {line.version or 'HCPCS Level II'}")
        else:
            answer.ask_once(f"What dose of the drug was given (in {per.unit})? {line.code} is billed per {per.text}.")
            continue
        wasted = facts.wasted_dose
        if wasted is not None:
            waste_units = units_for(wasted.amount, wasted.unit, per)
            if waste_units:
                answer.add(Line(line.code, "hcpcs", RECOMMENDED,
                                f"the discarded amount ({wasted.text}) from a single-dose container, on its own "
                                "line with JW", line.title, units=waste_units, modifiers=["JW"],
                                version=line.version, source="units"))


def _by_name(kb: KB, facts, answer: Answer) -> list[Line]:
    found: list[Line] = []
    for m in _NAME.finditer(facts.text):
        words = DRUG_NAMES[m.group(1).lower()]
        rows = [r for r in kb.hcpcs_titled(list(words)) if descriptor_dose(r.title)
                and not re.search(r"biosimilar|compounded|preservative[- ]free|extended[- ]release|for esrd",
                                  r.title, re.I)]
        rows.sort(key=lambda r: (not r.title.lower().startswith(("injection", "infusion")), len(r.title), r.code))
        for i, row in enumerate(rows[:3]):
            if answer.line(row.code):
                continue
            role = RECOMMENDED if i == 0 else ALTERNATIVE
            found.append(answer.add(Line(row.code, "hcpcs", role,
                                         f"HCPCS code for {m.group(1)} ({row.title})" if i == 0 else
                                         "another descriptor for the same drug; check the product given",
                                         row.title, version=kb.version(row.code), source="units")))
        break
    return [line for line in found if line.role == RECOMMENDED]
