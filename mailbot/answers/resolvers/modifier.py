"""Which modifier: a table of the situations coders describe and the modifier each calls for.

First matching row per group wins (the more specific words first: "no ABN"
before "ABN", "nothing wasted" before "wasted").  The modifier goes on the
line the row names (the E/M for 25 / 57 / 24, the drug for JW / JZ, the
procedure otherwise); fee-schedule indicators are checked where they decide:
PC/TC indicator 1 for 26 / TC, bilateral indicator 1 for 50 (2 or 3: RT / LT
lines, or no modifier).  Guidance text is our own (mailbot.codes.modifiers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.answers.kb import KB
from mailbot.answers.model import Answer, Line
from mailbot.codes.modifiers import explain

EM = re.compile(r"^99(?:2\d{2}|4\d{2})$")


@dataclass(frozen=True)
class Situation:
    group: str
    modifier: str
    pattern: str
    applies_to: str      # em | procedure | drug | any
    why: str


SITUATIONS: tuple[Situation, ...] = (
    Situation("waste", "JZ", r"\b(?:no|nothing|none|not|zero|without)\b[\w\s-]{0,25}\b(?:wast|discard)", "drug",
              "no amount was discarded from a single-dose container (required on Medicare claims since 2023-07-01)"),
    Situation("waste", "JW", r"\bwast|\bdiscard", "drug",
              "the discarded amount of a single-dose container goes on its own line with JW"),
    Situation("abn", "GZ", r"\bno abn\b|\bwithout (?:an )?abn\b|\babn (?:was )?not\b|\bno waiver", "any",
              "expected denial as not reasonable and necessary and no ABN on file"),
    Situation("abn", "GY", r"statutor\w* exclu|not a (?:medicare )?benefit|non-?covered|routine foot care", "any",
              "statutorily excluded or not a Medicare benefit"),
    Situation("abn", "GA", r"\babn\b|\bwaiver of liability", "any", "a signed ABN is on file"),
    Situation("global", "57", r"decision (?:for|to (?:do|perform)?) ?surgery|decided (?:on|to do) surgery", "em",
              "the E/M resulted in the decision for major surgery (90-day global) the day before or the same day"),
    Situation("global", "24", r"\bunrelated\b[\w\s/-]{0,40}\b(?:visit|e/m|problem|evaluation)|"
              r"(?:visit|e/m|office visit)\b[\w\s/-]{0,40}\bunrelated", "em",
              "an unrelated E/M during a postoperative (global) period"),
    Situation("global", "79", r"unrelated (?:procedure|surgery)", "procedure",
              "an unrelated procedure during the postoperative period of another"),
    Situation("global", "78", r"return(?:ed)? to the (?:or|operating room)|unplanned return", "procedure",
              "an unplanned return to the operating room for a related procedure during the global period"),
    Situation("global", "58", r"\bstaged\b|\bplanned\b|more extensive", "procedure",
              "a staged or planned related procedure during the global period"),
    Situation("distinct", "XE", r"separate (?:encounter|session)|different (?:encounter|session)", "procedure",
              "the services were at separate encounters on the same day (XE, more specific than 59)"),
    Situation("distinct", "XS", r"different (?:anatomic\w* )?sites?|separate (?:structure|organ|site|lesion|"
              r"incision)|different (?:organ|structure|lesion)s?", "procedure",
              "a separate structure, organ or site (XS, more specific than 59)"),
    Situation("distinct", "XP", r"different practitioner|separate practitioner|another (?:provider|practitioner)",
              "procedure", "performed by a different practitioner (XP, more specific than 59)"),
    Situation("distinct", "XU", r"non-?overlapping|unusual", "procedure",
              "an unusual service that does not overlap the main one (XU, more specific than 59)"),
    Situation("component", "26", r"interpret\w*|\bread(?:s|ing)?\b|professional component|\bpc only", "procedure",
              "professional component only (interpretation and report)"),
    Situation("component", "TC", r"technical (?:component|part|only)|\btc only\b|equipment only", "procedure",
              "technical component only"),
    Situation("tele", "95", r"telehealth|telemedicine|audio[- ]video|video visit", "any",
              "synchronous audio-video telemedicine"),
    Situation("assist", "80", r"assistant surgeon|assist(?:ing)? at surgery", "procedure", "assistant surgeon"),
    Situation("repeat", "91", r"repeat (?:clinical )?lab", "procedure", "a repeat clinical laboratory test the same day"),
    Situation("therapy", "GP", r"physical therapy|\bpt services\b|\bpt plan", "any",
              "services under an outpatient physical therapy plan of care"),
    Situation("therapy", "GO", r"occupational therapy", "any",
              "services under an outpatient occupational therapy plan of care"),
    Situation("therapy", "GN", r"speech[- ]language|speech therapy", "any",
              "services under an outpatient speech-language pathology plan of care"),
    Situation("reduced", "53", r"discontinu|terminated due to|threat to the patient", "procedure",
              "discontinued because of a threat to the patient's well-being"),
    Situation("reduced", "52", r"\breduced\b|partially reduced", "procedure",
              "a reduced service at the physician's discretion"),
    Situation("em", "25", r"separately identifiable|significant,? (?:and )?separate|same day as (?:a )?(?:minor )?"
              r"procedure|e/m (?:on the )?same day|e/m .{0,40}(?:procedure|injection)|(?:procedure|injection) .{0,60}"
              r"(?:e/m|office visit)", "em",
              "a significant, separately identifiable E/M on the day of a procedure goes on the E/M"),
)
_BILATERAL = {"1": "50", "2": "", "3": "RT/LT"}


def resolve(kb: KB, facts, answer: Answer) -> None:
    text = facts.text.lower()
    used_groups: set[str] = set()
    for situation in SITUATIONS:
        if situation.group in used_groups or not re.search(situation.pattern, text):
            continue
        if situation.modifier == "JW" and facts.wasted_dose is None and facts.doses:
            continue
        used_groups.add(situation.group)
        _apply(kb, facts, answer, situation.modifier, situation.applies_to, situation.why)
    em_with_procedure(kb, facts, answer, used_groups)
    _laterality(kb, facts, answer)
    for raw in facts.codes:
        if re.fullmatch(r"-?[0-9A-Z]{2}", raw) and explain(raw):
            _apply(kb, facts, answer, raw.lstrip("-"), "any", "the modifier asked about")


def _targets(answer: Answer, applies_to: str) -> list[Line]:
    lines = [line for line in answer.recommended if line.system in ("cpt", "hcpcs")]
    if applies_to == "em":
        return [line for line in lines if EM.match(line.code)]
    if applies_to == "drug":
        return [line for line in lines if line.code.startswith("J") and "JW" not in line.modifiers][:1]
    if applies_to == "procedure":
        return [line for line in lines if not EM.match(line.code) and not line.code.startswith("J")][-1:]
    return [line for line in lines if not line.code.startswith("J")][:1]


def _apply(kb: KB, facts, answer: Answer, modifier: str, applies_to: str, why: str) -> None:
    if modifier in ("26", "TC"):
        for line in _targets(answer, "procedure"):
            rvu = kb.rvu(line.code) or {}
            pctc = (rvu.get("indicators") or {}).get("pctc")
            if pctc and pctc != "1":
                answer.rule(f"{line.code} has PC/TC indicator {pctc}: {modifier} does not apply to it",
                            f"Physician Fee Schedule {rvu.get('version', '')}")
                return
            if pctc == "1":
                answer.rule(f"{line.code} has PC/TC indicator 1: the professional (26) and technical (TC) "
                            "components may be billed separately", f"Physician Fee Schedule {rvu.get('version', '')}")
    targets = _targets(answer, applies_to)
    if modifier == "JW":
        targets = [line for line in answer.recommended if "JW" in line.modifiers]
    for line in targets:
        if modifier not in line.modifiers:
            line.modifiers.append(modifier)
    if not targets:
        answer.facts.setdefault("recommended_modifiers", [])
        if modifier not in answer.facts["recommended_modifiers"]:
            answer.facts["recommended_modifiers"].append(modifier)
    answer.rule(f"modifier {modifier}: {why}. {explain(modifier) or ''}".strip(), "mailbot modifier guidance")


def em_with_procedure(kb: KB, facts, answer: Answer, used: set[str]) -> None:
    """An E/M named with a minor procedure (global 000 / 010) the same day takes 25; with a
    major one (090) the decision for surgery takes 57 (already handled by words)."""
    if "em" in used or "global" in used:
        return
    lines = [line for line in answer.recommended if line.system == "cpt"]
    ems = [line for line in lines if EM.match(line.code)]
    procedures = [line for line in lines if not EM.match(line.code)]
    if not ems or not procedures:
        return
    for proc in procedures:
        rvu = kb.rvu(proc.code) or {}
        if rvu.get("global_days") in ("000", "010"):
            _apply(kb, facts, answer, "25", "em",
                   f"{proc.code} has a {rvu.get('global_days')}-day global period (minor procedure): a "
                   "significant, separately identifiable E/M the same day takes 25")
            return


def _laterality(kb: KB, facts, answer: Answer) -> None:
    if not facts.laterality:
        return
    procedures = [line for line in answer.recommended if line.system == "cpt" and not EM.match(line.code)]
    for line in procedures[:1]:
        rvu = kb.rvu(line.code) or {}
        indicator = (rvu.get("indicators") or {}).get("bilateral", "")
        if facts.laterality == "bilateral":
            if indicator == "1":
                _apply(kb, facts, answer, "50", "procedure",
                       f"{line.code} has bilateral surgery indicator 1 ({rvu.get('version', 'PFS')}): one line with 50")
            elif indicator == "3":
                answer.rule(f"{line.code} has bilateral indicator 3: report each side (RT and LT)",
                            f"Physician Fee Schedule {rvu.get('version', '')}")
            elif indicator:
                answer.rule(f"{line.code} has bilateral indicator {indicator}: 50 does not apply",
                            f"Physician Fee Schedule {rvu.get('version', '')}")
        else:
            _apply(kb, facts, answer, "RT" if facts.laterality == "right" else "LT", "procedure",
                   f"the {facts.laterality} side")
    if not procedures and re.search(r"\bmod(?:ifier)?\b", facts.text, re.I):
        mod = {"right": "RT", "left": "LT", "bilateral": "50"}[facts.laterality]
        _apply(kb, facts, answer, mod, "procedure", f"the {facts.laterality} side")
