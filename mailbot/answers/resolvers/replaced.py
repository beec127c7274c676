"""What replaced a deleted, terminated or header code: its successors, with why and the unit conversion.

Successors come from :mod:`mailbot.answers.successors`.  The one the
question's words single out (or the "unspecified" default) is recommended,
the rest are alternatives; a unit conversion is kept for :mod:`.units`.
"""

from __future__ import annotations

from mailbot.answers.kb import KB
from mailbot.answers.model import ALTERNATIVE, NOT_RECOMMENDED, RECOMMENDED, Answer, Line
from mailbot.answers.resolvers import pick_by_words
from mailbot.answers.successors import successors

MAX_ALTERNATIVES = 6


def resolve(kb: KB, facts, answer: Answer) -> None:
    for line in list(answer.with_role(NOT_RECOMMENDED)):
        if line.source != "valid" or line.system not in ("icd10cm", "hcpcs"):
            continue
        found = successors(kb, line.code, line.system)
        if not found:
            continue
        chosen, _ = pick_by_words(facts.text, found, line.title) if line.system == "icd10cm" else (found[0], False)
        for succ in [chosen] + [s for s in found if s is not chosen][:MAX_ALTERNATIVES]:
            role = RECOMMENDED if succ is chosen else ALTERNATIVE
            new = answer.add(Line(succ.code, line.system, role, succ.why, succ.title,
                                  version=kb.version(succ.code), source="replaced"))
            if succ.units_per_old_unit and role == RECOMMENDED:
                answer.facts.setdefault("replaced", {})[new.code] = {"old": line.code,
                                                                      "units_per_old_unit": succ.units_per_old_unit}
        line.why += f"; report {chosen.code} instead"
        answer.rule(chosen.why, f"{kb.version(chosen.code) or line.system}, codes ended and added")
