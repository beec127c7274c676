"""Run the engine: facts -> intents -> resolvers -> a checked, structured answer.

Deterministic: the same question, date and code sets give the same answer.
Besides the intents the question's words fire, some fire on what the code
sets say (a named code that ended or is a header fires ``replaced`` and
``children``; a recommended code with a tabular note fires ``sequence``);
those are recorded with a "code sets:" trigger.
"""

from __future__ import annotations

import importlib
from datetime import date

from sqlmodel import Session

from mailbot.answers.dose import descriptor_dose
from mailbot.answers.facts import Facts, extract
from mailbot.answers.intents import detect
from mailbot.answers.kb import KB
from mailbot.answers.model import ALTERNATIVE, NOT_RECOMMENDED, RECOMMENDED, Answer
from mailbot.answers.resolvers.describe import add_candidates, diagnosis_beside_procedure, system_of
from mailbot.answers.resolvers.sequence import diagnosis_conflicts

ORDER = ("valid", "replaced", "children", "units", "describe", "sequence", "modifier", "bundle")


def answer(session: Session, text: str, *, message_date: date | None = None, on: date | None = None,
           history: list[dict[str, str]] | None = None) -> Answer:
    """The engine's answer to ``text`` (already redacted).

    ``on`` overrides the date of service (a reviewer set it); else it is the
    date the question states, else ``message_date`` (the Date header), said as
    an assumption.  ``history`` (``[{"who", "text"}]``, oldest first) makes a
    follow-up inherit the codes, doses and date its thread already stated."""
    facts = _with_history(extract(text, message_date=message_date), history, message_date)
    dos = on or facts.date_of_service or message_date or date.today()
    result = Answer(question=text, date_of_service=dos, facts=facts.to_dict())
    result.date_note = _date_note(facts, on, dos)
    result.system = system_of(facts.text) if not facts.codes else ""
    kb = KB(session, dos)
    fired = detect(facts)
    names = {f["intent"] for f in fired}
    result.facts["asked_intents"] = sorted(names)   # fired by the question itself, not by the code sets
    for name in ORDER:
        trigger = _code_set_trigger(name, kb, facts, result) if name not in names else ""
        if name not in names and not trigger:
            continue
        if trigger:
            fired.append({"intent": name, "trigger": trigger})
            names.add(name)
        module = importlib.import_module(f"mailbot.answers.resolvers.{name}")
        module.resolve(kb, facts, result)
    if facts.codes:
        diagnosis_beside_procedure(kb, facts, result)
    if facts.codes and "describe" in names and len(result.with_role(ALTERNATIVE)) < 2:
        # a question that names a code and also describes: keep the search candidates
        add_candidates(kb, facts, result, recommend=not result.recommended)
    result.intents = sorted(fired, key=lambda f: ORDER.index(f["intent"]))
    _verify(kb, result)
    diagnosis_conflicts(kb, facts, result)
    _missing(facts, result)
    result.confidence = confidence(result)
    return result


def _with_history(facts: Facts, history: list[dict[str, str]] | None, message_date: date | None) -> Facts:
    asked = [h.get("text", "") for h in (history or []) if h.get("who") == "asker" and h.get("text")]
    if not asked:
        return facts
    earlier = extract("\n".join(asked), message_date=message_date)
    facts.codes = facts.codes or earlier.codes
    facts.doses = facts.doses or earlier.doses
    if facts.date_source in ("", "message date") and earlier.date_source in ("stated", "in text"):
        facts.date_of_service, facts.date_source = earlier.date_of_service, earlier.date_source + " earlier in the thread"
    for name in ("setting", "payer", "laterality", "encounter", "route", "sex"):
        if not getattr(facts, name):
            setattr(facts, name, getattr(earlier, name))
    facts.text = "\n".join(asked + [facts.text])
    return facts


def _date_note(facts: Facts, on: date | None, dos: date) -> str:
    if on is not None:
        return f"date of service {dos.isoformat()}"
    if facts.date_source.startswith(("stated", "in text")):
        return f"date of service {dos.isoformat()} (as stated)"
    if facts.date_source == "message date":
        return f"date of service assumed to be {dos.isoformat()}, the date of your message; tell us if it differs"
    if facts.date_source == "year stated":
        return f"date of service assumed to be in {dos.year}; tell us the exact date if it matters"
    return f"date of service assumed to be {dos.isoformat()} (today); tell us if it differs"


def _code_set_trigger(name: str, kb: KB, facts: Facts, result: Answer) -> str:
    if name == "replaced" and any(line.source == "valid" for line in result.with_role(NOT_RECOMMENDED)):
        return "code sets: a named code is not reportable on the date of service"
    if name == "children" and any(kb.card(c).get("found") and kb.card(c).get("system") == "icd10cm"
                                  and kb.card(c).get("billable") is False for c in facts.codes
                                  if c in facts.placeholder_codes):
        return "code sets: a named code is a header"
    if name == "describe" and not result.recommended and not facts.codes:
        return "code sets: nothing named to look up"
    if name == "sequence" and any(line.system == "icd10cm" for line in result.recommended):
        return "code sets: a recommended ICD-10-CM code may carry a sequencing note"
    if name == "units" and any(line.system == "hcpcs" and descriptor_dose(line.title)
                               for line in result.recommended) and facts.doses:
        return "code sets: a drug code billed per dose, and a dose is stated"
    if name == "units" and result.facts.get("replaced"):
        return "code sets: the successor is billed per a different dose"
    if name == "bundle" and len([line for line in result.recommended if line.system in ("cpt", "hcpcs")]) >= 2:
        return "code sets: two or more procedure codes"
    return ""


def _verify(kb: KB, result: Answer) -> None:
    """Nothing invalid is recommended: every recommended code is checked again for the date."""
    for line in result.lines:
        if line.role in (RECOMMENDED, ALTERNATIVE) and not kb.reportable(line.code):
            card = kb.card(line.code)
            line.role = NOT_RECOMMENDED
            line.why = str(card.get("message") or "not reportable on the date of service")


def _missing(facts: Facts, result: Answer) -> None:
    if facts.contradictory_dates:
        result.ask_once("Which date is the date of service: " + " or ".join(dict.fromkeys(facts.dates_stated))
                        + "? The answer depends on it.")
    if not result.lines and not result.modifiers:
        result.ask_once("Which codes are you considering, or what exactly was documented (condition, procedure, "
                        "drug and dose)?")


def confidence(result: Answer) -> float:
    """How sure the engine is, from what the answer rests on (not a constant)."""
    score = 0.15
    recommended = result.recommended
    if recommended or result.modifiers:
        score += 0.3
    sources = {line.source for line in recommended}
    if recommended and sources <= {"valid", "replaced", "children", "units", "sequence", "bundle"}:
        score += 0.25                      # from named codes and the tables, not a search
    elif "describe" in sources:
        margin = float(result.facts.get("search_margin", 0) or 0)
        score += min(0.2, margin / 40)
    if result.rules:
        score += 0.1
    if result.ask:
        score -= 0.25
    if result.facts.get("contradictory_dates"):
        score -= 0.1
    return round(max(0.05, min(0.95, score)), 2)
