"""What the code knowledge base says about the codes on a detail page.

The reviewer must see, next to every cited code, its card (title or the
licence note for CPT, billable, version), the verification verdict for the
date of service, and NCCI pair / MUE warnings.  Those come from
``mailbot.codes`` (lookup, validate, edits).  A failure there must not hide
the consultation from the reviewer, so it is reported on the page instead of
breaking it -- approving is still guarded by the consultation service.
"""

from __future__ import annotations

import re

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session

log = logging.getLogger(__name__)


@dataclass
class CodeFacts:
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)      # code -> CodeCard.to_dict()
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)   # code -> {status, message, ok, version}
    edits: dict[str, Any] | None = None                                 # CheckResult.to_dict()
    problems: list[str] = field(default_factory=list)


# NCCI pairs and MUEs exist only for procedure codes.
PROCEDURE_SYSTEMS = frozenset({"cpt", "hcpcs"})


def facts(session: Session, codes: list[str], on: date | None = None) -> CodeFacts:
    """Cards, verdicts and NCCI/MUE facts for ``codes``.  One lookup serves
    both cards and verdicts (a verdict is the card's status for the date);
    the NCCI/MUE check gets the procedure codes only."""
    result = CodeFacts()
    codes = list(dict.fromkeys(c for c in codes if c))
    if not codes:
        return result
    procedures = list(codes)
    try:
        from mailbot.codes.lookup import lookup
        from mailbot.codes.validate import OK_STATUSES

        procedures = []
        for raw, card in zip(codes, lookup(session, codes, on=on)):
            data = card.to_dict()
            verdict = {"status": card.status, "message": card.message, "version": card.version,
                       "system": card.system, "ok": card.status in OK_STATUSES, "since": card.since,
                       "successors": card.successors, "date_assumed": card.date_assumed}
            for key in {raw, card.code}:
                result.cards[key] = data
                result.verdicts[key] = verdict
            if card.found and card.system in PROCEDURE_SYSTEMS:
                procedures.append(card.code)
    except Exception as exc:
        log.exception("code lookup failed")
        result.problems.append(f"Code cards and verification unavailable: {exc}")
    if procedures:
        try:
            from mailbot.codes.edits import check

            result.edits = check(session, procedures, on=on).to_dict()
        except Exception as exc:
            log.exception("NCCI/MUE check failed")
            result.problems.append(f"NCCI/MUE check unavailable: {exc}")
    return result


def quick_lookup(session: Session, query: str) -> dict[str, Any]:
    """The detail page's lookup panel: codes typed -> cards; words -> search hits."""
    query = query.strip()[:200]
    if not query:
        return {"query": "", "cards": [], "hits": [], "problem": ""}
    verb = re.match(r"^\s*(lookup|search|check)\b[\s:]*", query, re.I)   # the mail syntax: "CHECK 20610 99213"
    if verb and query[verb.end():].strip():
        shown, query = query, query[verb.end():].strip()
        if verb.group(1).lower() == "search":
            from mailbot.codes.search import search

            return {"query": shown, "cards": [], "hits": [h.to_dict() for h in search(session, query, limit=10)],
                    "problem": ""}
    try:
        from mailbot.codes.extract import find_codes

        codes = find_codes(query)
        if codes:
            from mailbot.codes.lookup import lookup

            return {"query": query, "cards": [c.to_dict() for c in lookup(session, codes[:20])], "hits": [],
                    "problem": ""}
        from mailbot.codes.search import search

        return {"query": query, "cards": [], "hits": [h.to_dict() for h in search(session, query, limit=10)],
                "problem": ""}
    except Exception as exc:
        log.exception("quick lookup failed")
        return {"query": query, "cards": [], "hits": [], "problem": f"Lookup unavailable: {exc}"}
