"""What a question asks: an ordered table of intents, their triggers and resolvers.

Read like routing rules: every intent whose trigger matches fires, in table
order, and its resolver (one module in :mod:`mailbot.answers.resolvers`)
adds to the answer.  Which intents fired, and on which words, is recorded on
the consultation so a reviewer sees why the draft says what it says.

A trigger is a regular expression on the question, or a predicate on the
extracted facts (named as such in the record).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from mailbot.answers.facts import Facts


@dataclass(frozen=True)
class Intent:
    name: str
    resolver: str                          # module in mailbot.answers.resolvers
    words: re.Pattern | None = None
    fact: Callable[[Facts], bool] | None = None
    fact_label: str = ""
    description: str = ""


def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


_PROCEDURE = re.compile(r"^(?:\d{4}[0-9FTU]|[A-V]\d{4})(?:-..)?$")
_DRUG = re.compile(r"^J\d{4}")


def _names_codes(f: Facts) -> bool:
    return bool(f.codes)


def _two_procedures(f: Facts) -> bool:
    return sum(1 for c in f.codes if _PROCEDURE.match(c) and not c.startswith("J")) >= 2


def _dose_with_drug(f: Facts) -> bool:
    return bool(f.given_dose) and (any(_DRUG.match(c) for c in f.codes) or f.given_dose.unit in ("mg", "mcg", "g",
                                                                                                  "units", "ml"))


def _modifier_attached(f: Facts) -> bool:
    return any("-" in c for c in f.codes)


INTENTS: tuple[Intent, ...] = (
    Intent("valid", "valid", _rx(r"\b(?:valid|billable|still|active|expired?|denied|reject\w*|terminated|"
                                 r"deleted|allowed|ok for|good for|accept\w*|effective)\b"),
           _names_codes, "the question names codes",
           "is this code valid / billable on the date of service"),
    Intent("replaced", "replaced", _rx(r"\breplace\w*|\binstead\b|\bno longer\b|\bdeleted\b|\bterminated\b|"
                                       r"\bgone\b|\bnew code\b|\bwhat (?:now|do (?:i|we) use now)|\bcrosswalk\b|"
                                       r"\bdiscontinued code\b|\bwas denied\b|\brejected\b"),
           description="what replaced a deleted, terminated or header code"),
    Intent("children", "children", _rx(r"\b(?:under|subcodes?|sub-codes?|options|list(?: the)?|which one|"
                                       r"children|more specific|billable codes in|codes in category)\b"),
           lambda f: bool(f.placeholder_codes), "a code written with an x placeholder",
           "the reportable codes of a category"),
    Intent("describe", "describe", _rx(r"\b(?:code for|what code|which code|dx\b|diagnosis|icd|hcpcs for|"
                                       r"hcpcs code|code\?|what do (?:i|we) use|need the|what'?s the code)"),
           lambda f: not f.codes, "no code is named", "the code for a described condition, procedure or supply"),
    Intent("sequence", "sequence", _rx(r"\b(?:first|order|sequenc\w*|use additional|code also|code first|"
                                       r"primary|secondary|principal|with)\b"),
           description="sequencing; code first / use additional code partners"),
    Intent("units", "units", _rx(r"\bunits?\b|\bhow many\b|\bdose\b"), _dose_with_drug, "a dose is stated",
           "billing units: the dose stated against the dose in the descriptor"),
    Intent("modifier", "modifier", _rx(r"\bmod(?:ifier)?s?\b|\bbilateral|\bboth\b|\babn\b|\bwast|\bdiscard|"
                                       r"\binterpretation\b|\btechnical\b|\btelehealth\b|\bassistant\b|\brepeat\b|"
                                       r"\bstaged\b|\breturn to the or\b|\bunrelated\b|\bdistinct\b|"
                                       r"\bseparate\w*\b|\bx[esup]\b|\bplan of care\b|\bdiscontinued\b|"
                                       r"\breduced\b|\bexcluded\b|\bright\b|\bleft\b|\bdecision for surgery\b"),
           _modifier_attached, "a modifier is attached to a code", "which modifier"),
    Intent("bundle", "bundle", _rx(r"\btogether\b|\bsame day\b|\bbundl\w*|\bncci\b|\bptp\b|\bglobal\b|"
                                   r"\badd-?on\b|\bmue\b|\bbill both\b|\bseparately\b|\bwithout\b.*\b\d{5}\b|"
                                   r"\bpost-?op\b|\bdays after\b|\bor g0463\b|\bclinic visit\b"),
           _two_procedures, "two or more procedure codes are named",
           "can these be billed together: NCCI PTP, MUE, add-on, global period"),
)


def detect(facts: Facts) -> list[dict[str, str]]:
    """The intents that fire for ``facts``, in table order, each with its trigger."""
    fired: list[dict[str, str]] = []
    for intent in INTENTS:
        trigger = ""
        if intent.words is not None and (m := intent.words.search(facts.text)):
            trigger = f'words: "{m.group(0).strip()}"'
        elif intent.fact is not None and intent.fact(facts):
            trigger = f"facts: {intent.fact_label}"
        if trigger:
            fired.append({"intent": intent.name, "trigger": trigger})
    return fired


def by_name(name: str) -> Intent:
    return next(intent for intent in INTENTS if intent.name == name)
