"""The reportable codes of a category: billable descendants valid on the date.

"What are the codes under N18.3?" lists them all as reportable (choose by
the documentation); "M54.5x -- which one for low back pain, unspecified?"
recommends the one the words single out and lists the rest as alternatives.
For injury codes the 7th character follows the encounter stated (initial
unless subsequent or sequela is said).
"""

from __future__ import annotations

from mailbot.answers.kb import KB
from mailbot.answers.model import ALTERNATIVE, RECOMMENDED, Answer, Line
from mailbot.answers.resolvers import named, pick_by_words

SEVENTH = {"initial": "A", "subsequent": "D", "sequela": "S"}
MAX_LISTED = 12


def resolve(kb: KB, facts, answer: Answer) -> None:
    for _, base, _ in named(facts):
        card = kb.card(base)
        if card.get("system") != "icd10cm" or not card.get("found") or card.get("billable"):
            continue
        rows = kb.billable_under(base, limit=200)
        seventh = SEVENTH.get(facts.encounter or "initial")
        if any(len(r.code.replace(".", "")) == 7 for r in rows):
            rows = [r for r in rows if len(r.code.replace(".", "")) < 7 or r.code.endswith(seventh)]
        if not rows:
            continue
        chosen, by_words = pick_by_words(facts.text, rows, card.get("title") or "")
        single = by_words or base in facts.placeholder_codes or "which one" in facts.text.lower()
        version = str(card.get("version") or "ICD-10-CM")
        for row in rows[:MAX_LISTED]:
            if single:
                role = RECOMMENDED if row is chosen else ALTERNATIVE
                why = (f"the code under {base} that matches the question's words" if row is chosen and by_words
                       else f"the default (unspecified) code under {base}" if row is chosen
                       else f"also under {base}; choose it if the record documents it")
            else:
                role, why = RECOMMENDED, f"billable under {base} on {kb.on.isoformat()}; choose by the documentation"
            answer.add(Line(row.code, "icd10cm", role, why, row.title, version=version, source="children"))
        if len(rows) > MAX_LISTED:
            answer.rule(f"{base} has {len(rows)} billable codes on {kb.on.isoformat()}; the first {MAX_LISTED} are "
                        "listed", version)
        answer.rule(f"{base} is a header in {version}: only a billable code under it may be reported", version)
