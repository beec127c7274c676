"""Instant facts for the acknowledgement: what the code sets say about the codes a question names.

Stated as facts, not as the answer (a coder still reviews the answer): for
each named code, whether it is valid and billable on the date of service
(and which code-set release says so), and for a code that ended or is a
header, what the code sets list in its place.  Nothing here reasons about
the question; an unknown or malformed code is said to be unknown.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from mailbot.answers.facts import extract
from mailbot.answers.kb import KB, SYSTEM_NAMES
from mailbot.answers.resolvers import named
from mailbot.answers.successors import successors

MAX_CODES = 8
MAX_SUCCESSORS = 4


def instant_facts(session: Session, text: str, *, message_date: date | None = None) -> dict[str, Any]:
    """``{"date_of_service", "date_note", "codes": [{"code", "system", "fact", "successors"}]}``."""
    facts = extract(text, message_date=message_date)
    on = facts.date_of_service or message_date or date.today()
    kb = KB(session, on)
    rows = []
    for _, base, _ in named(facts)[:MAX_CODES]:
        card = kb.card(base)
        system = card.get("system") or ""
        if system == "modifier" or (not card.get("found") and base in facts.loose_codes):
            continue
        label = SYSTEM_NAMES.get(system, "unknown code set")
        version = card.get("version") or label
        if not card.get("found"):
            rows.append({"code": base, "system": label, "fact": f"not found in the loaded code sets ({label})",
                         "successors": []})
            continue
        status = card.get("status")
        if status in ("ok", "unlicensed_descriptor"):
            fact = f"valid and billable on {on.isoformat()} ({version})"
        elif status == "not_billable":
            fact = f"a header on {on.isoformat()}, not billable ({version})"
        else:
            fact = f"{card.get('message')} ({version})"
        after = [] if status in ("ok", "unlicensed_descriptor") else successors(kb, base, system)
        rows.append({"code": base, "system": label, "fact": fact,
                     "successors": [{"code": s.code, "title": s.title} for s in after[:MAX_SUCCESSORS]],
                     "more_successors": max(0, len(after) - MAX_SUCCESSORS)})
    note = "as stated" if facts.date_source in ("stated", "in text") else "assumed from the date of your message"
    return {"date_of_service": on.isoformat(), "date_note": note, "codes": rows}
