"""One resolver per intent; each adds lines, rules and at most one question to the answer.

Every resolver is ``resolve(kb, facts, answer) -> None`` and reasons only from
the knowledge base (:mod:`mailbot.answers.kb`) and the tables in its module.
Shared helpers live here.
"""

from __future__ import annotations

import re
from typing import Any

from mailbot.codes.normalize import split_modifier

STOP = frozenset("""a an the and or of to in on at for with without by from is are was were be can could should
would will do does did have has had i we you it this that what which who how when where why any some pt patient
code codes dx icd hcpcs cpt please need use used using bill billed billing report same day still valid billable
""".split())


def named(facts) -> list[tuple[str, str, str]]:
    """``[(as mentioned, base code, attached modifier)]`` for the codes the question names."""
    out = []
    for code in facts.codes:
        base, mod = split_modifier(code) if re.match(r"^(?:\d{4}[0-9FTUM]|[A-V]\d{4})-", code) else (code, "")
        out.append((code, base, mod))
    return out


def words_of(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", (text or "").lower()) if w not in STOP}


def pick_by_words(text: str, rows: list[Any], parent_title: str = "") -> tuple[Any | None, bool]:
    """The row whose title the question's words single out, else the "unspecified" one.

    Returns ``(row, chosen_by_words)``."""
    if not rows:
        return None, False
    asked = words_of(text)
    parent = words_of(parent_title)
    scored = []
    for row in rows:
        distinct = words_of(row.title) - parent
        scored.append((len(distinct & asked), row))
    best = max(score for score, _ in scored)
    if best > 0:
        top = [row for score, row in scored if score == best]
        if len(top) == 1:
            return top[0], True
        rows = top
    unspecified = [row for row in rows if "unspecified" in row.title.lower()]
    return (unspecified[0] if unspecified else rows[0]), False
