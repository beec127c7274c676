"""Is this code valid / billable on the date of service?  The verdict of each named code.

A reportable code (exists, valid on the date, billable) is recommended; a
header, terminated, not-yet-valid or unknown code is marked not to be
reported, with the code set's own words; :mod:`.replaced` then says what to
report instead.
"""

from __future__ import annotations

from mailbot.answers.kb import KB, SYSTEM_NAMES
from mailbot.answers.model import NOT_RECOMMENDED, RECOMMENDED, Answer, Line
from mailbot.answers.resolvers import named


def resolve(kb: KB, facts, answer: Answer) -> None:
    for raw, base, mod in named(facts):
        card = kb.card(base)
        system = card.get("system") or ""
        version = str(card.get("version") or "")
        if system == "modifier":
            continue
        if not card.get("found"):
            if base in facts.loose_codes:
                continue  # a loose reading that is no code ("I10 2 times"): not what was meant
            answer.add(Line(base, system, NOT_RECOMMENDED, f"{base} is not in the loaded code sets", source="valid"))
            answer.rule(f"{base}: {card.get('message') or 'not found'}", "code sets loaded in this installation")
            continue
        title = card.get("title") or ""
        label = SYSTEM_NAMES.get(system, system)
        if card.get("status") in ("ok", "unlicensed_descriptor"):
            why = f"valid and billable on {kb.on.isoformat()} ({version or label})"
            answer.add(Line(base, system, RECOMMENDED, why, title, modifiers=[mod] if mod else [],
                            version=version, source="valid"))
            continue
        else:
            answer.add(Line(base, system, NOT_RECOMMENDED, str(card.get("message") or card.get("status")),
                            title, version=version, source="valid"))
        answer.rule(f"{base} ({label}): {card.get('message')}", version or label)
