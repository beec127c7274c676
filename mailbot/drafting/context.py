"""Retrieval: what the code knowledge base knows that bears on a question.

For the (redacted) question text this gathers, all through the code
knowledge base API (``mailbot.codes``):

- every code mentioned, looked up for the date of service (descriptor or
  licence note, billable, validity with the code-set year, what to report
  instead of a header / deleted / terminated code, RVU / global period, notes);
- search results for the question's words (when it describes rather than
  names a condition or procedure);
- NCCI pairs and MUEs among the mentioned procedure codes;
- plain-language explanations of the modifiers mentioned;
- the thread's earlier messages, for follow-ups;
- the answer engine's proposed answer (:mod:`mailbot.answers`): what is
  asked (intents), the recommended codes with roles, units and modifiers,
  and the rules behind them.

The result is plain data (:class:`DraftContext`): the LLM gets it as text,
the offline drafter composes from it, the reviewer page can show it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session

_PLACEHOLDER = re.compile(r"\[[A-Z]+\]")
# "modifier 59", "modifiers 25 and 59", "mod XU": the word in any case, the
# modifiers themselves as coders write them (digits or capitals).
_MODIFIER_WORD = re.compile(
    r"(?i:\bmod(?:ifier)?s?)\b[\s:#-]*((?:(?:\d{2}|[A-Z][A-Z0-9])\b(?:\s*(?:,|/|&|\bor\b|\band\b)\s*)?)+)")
_STOP = frozenset("""
a an the and or but if of to in on at for with without by from is are was were be been can could
should would will do does did have has had i we you he she they it this that these those my our your
what which who how when where why any some there their them his her its as not no yes so than then
please thanks thank hi hello dear question code codes coding bill billed billing report reported
use used using together same day right correct patient pt dx cpt icd hcpcs icd-10 icd-10-cm modifier
need needs also just one two get got help tell know about into per vs versus ok
dob dos mrn ssn phone email acct account member policy claim name date service birth
""".split())


@dataclass
class DraftContext:
    question: str                                   # the redacted question
    date_of_service: date | None = None
    codes: list[str] = field(default_factory=list)  # canonical, as mentioned (modifiers attached)
    cards: list[dict[str, Any]] = field(default_factory=list)
    search_query: str = ""
    search_hits: list[dict[str, Any]] = field(default_factory=list)
    check: dict[str, Any] | None = None
    modifiers: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, str]] = field(default_factory=list)   # [{"who", "text"}], redacted
    engine: dict[str, Any] = field(default_factory=dict)           # the engine's answer, as data
    proposed: str = ""                                            # the engine's answer, as draft text
    intents: list[dict[str, str]] = field(default_factory=list)   # what the question asks, and why
    engine_answer: Any = field(default=None, repr=False, compare=False)   # the Answer object itself

    @property
    def versions(self) -> list[str]:
        seen: dict[str, None] = {}
        for card in self.cards:
            if card.get("version"):
                seen.setdefault(str(card["version"]), None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        held, self.engine_answer = self.engine_answer, None
        try:
            data = asdict(self)
        finally:
            self.engine_answer = held
        data.pop("engine_answer", None)
        data["date_of_service"] = self.date_of_service.isoformat() if self.date_of_service else None
        return data

    def to_prompt_text(self, limit: int = 12_000) -> str:
        """The facts as compact JSON for the model (bounded in size)."""
        facts = {
            "date_of_service": self.date_of_service.isoformat() if self.date_of_service else "not stated",
            "codes_mentioned": [slim_card(card) for card in self.cards],
            "search_results_for_question_words": self.search_hits,
            "ncci_and_mue_among_mentioned_codes": self.check,
            "modifier_guidance": self.modifiers,
            "earlier_messages_in_thread": self.history,
            "proposed_answer": self.proposed,
        }
        text = json.dumps(facts, default=str, ensure_ascii=False, separators=(",", ":"))
        return text if len(text) <= limit else text[:limit] + "...(truncated)"


_PROMPT_KEYS = ("code", "system", "found", "title", "billable", "valid_on_date", "date", "date_assumed", "status",
                "message", "since", "successors", "version", "licence_note", "notes", "parent", "mue", "modifier")


def slim_card(card: dict[str, Any]) -> dict[str, Any]:
    """The facts of a code card worth a model's attention (not every child code)."""
    slim = {k: card[k] for k in _PROMPT_KEYS if card.get(k) not in (None, "", [], {})}
    rvus = [r for r in card.get("rvu") or [] if isinstance(r, dict)]
    if rvus:
        slim["rvu"] = rvus[0]
    if card.get("children"):
        slim["children"] = [c.get("code") for c in card["children"][:20] if isinstance(c, dict)]
    if card.get("suggestions"):
        slim["suggestions"] = card["suggestions"][:3]
    return slim


def base_code(code: str) -> str:
    """``99213-25`` -> ``99213``; ICD-10-CM codes have no modifier part."""
    return code.split("-", 1)[0]


def modifiers_in(text: str, codes: list[str]) -> list[str]:
    """Modifiers attached to codes (``99213-25``) or named (``modifier 59``)."""
    found: dict[str, None] = {}
    for code in codes:
        if "-" in code:
            found.setdefault(code.split("-", 1)[1].upper(), None)
    for m in _MODIFIER_WORD.finditer(text):
        for mod in re.findall(r"\b(?:\d{2}|[A-Z][A-Z0-9])\b", m.group(1)):
            found.setdefault(mod, None)
    return list(found)


def search_words(text: str, max_words: int = 60) -> str:
    """The describing words of a question, for a knowledge-base search (the
    literal "Subject:" label is not one of them)."""
    text = _PLACEHOLDER.sub(" ", text)
    text = re.sub(r"(?im)^\s*subject\s*:", " ", text)
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]+", text)
             if w.lower() not in _STOP and len(w) > 2 and not re.search(r"\d", w)]
    return " ".join(words[:max_words])


def build_context(session: Session, question: str, *, on: date | None = None,
                  history: list[dict[str, str]] | None = None, search_limit: int = 5,
                  max_codes: int = 20, message_date: date | None = None) -> DraftContext:
    """Gather the knowledge-base facts for ``question`` (already redacted).

    ``on`` is the date of service when known; else the engine takes the one
    the question states, else ``message_date`` (said as an assumption)."""
    from mailbot.answers import answer as run_engine
    from mailbot.answers.compose import render
    from mailbot.answers.facts import tidy_codes
    from mailbot.codes import edits, lookup, modifiers, search
    from mailbot.codes.extract import find_codes

    result = run_engine(session, question, message_date=message_date, on=on, history=history)
    on = result.date_of_service
    ctx = DraftContext(question=question, date_of_service=on, history=list(history or []),
                       engine=result.to_dict(), proposed=render(result), intents=list(result.intents),
                       engine_answer=result)
    ctx.codes = find_codes(tidy_codes(question)[0])[:max_codes]
    bases = list(dict.fromkeys(base_code(c) for c in ctx.codes))
    if bases:
        ctx.cards = [card.to_dict() for card in lookup.lookup(session, bases, on=on)]
    ctx.search_query = search_words(question)
    # A question that names its codes is searched only when it also describes something.
    if ctx.search_query and (not bases or len(ctx.search_query.split()) >= 2):
        try:  # candidates only from the code system the question is about
            ctx.search_hits = [hit.to_dict() for hit in search.search(
                session, ctx.search_query, system=result.system or None, limit=search_limit)]
        except search.SearchError:
            ctx.search_hits = []
    procedures = [c for c in bases if _is_procedure(c)]
    if procedures:
        # the table of the claim's setting decides (as in the bundle resolver: hospital outpatient
        # when stated, else practitioner, which ASCs use too); the other setting's comes labelled
        setting = "hospital" if result.facts.get("setting") == "hospital" else "practitioner"
        ctx.check = edits.check(session, procedures, on=on, setting=setting).to_dict()
    for mod in modifiers_in(question, ctx.codes):
        explanation = modifiers.explain(mod)
        if explanation:
            ctx.modifiers[mod] = explanation
    return ctx


def _is_procedure(code: str) -> bool:
    """CPT (5 digits, ####F/T/U) or HCPCS Level II (letter + 4 digits)."""
    return bool(re.fullmatch(r"\d{4}[0-9FTUM]|[A-Z]\d{4}", code))
