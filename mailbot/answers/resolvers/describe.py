"""The code for a described condition, procedure or supply: a knowledge-base search.

The question's describing words (without codes, dates, doses or the way
coders ask -- "what's the ICD-10 for", "dx code please") are searched in the
code system the question is about: ICD-10-CM for a diagnosis, HCPCS Level II
for a supply, drug or Medicare G-code.  The best billable hit valid on the
date is recommended, the next ones are alternatives; a header hit is replaced
by its default billable code.  Candidates from another system are never offered.
"""

from __future__ import annotations

import re

from mailbot.answers.kb import KB
from mailbot.answers.model import ALTERNATIVE, RECOMMENDED, Answer, Line
from mailbot.answers.resolvers import pick_by_words

# How coders ask, not what they ask about.
_ASKING = re.compile(
    r"\b(?:what(?:'s| is| are)?|which|need|needs|the|a|an|icd[- ]?10(?:[- ]?cm)?|icd|dx|diagnosis|hcpcs|cpt|"
    r"code|codes|please|pls|pt|patient|seen|for|do|i|we|use|using|only|one|to|us|tell|me|help|correct|right|"
    r"bill|billed|billing|report|dos|date|of|service|is|there|any|thanks|hi|hello|options|what|should|be|"
    r"would|could|can|with|dx code|documented|doc|chart|encounter for)\b", re.I)
_HCPCS_CUES = re.compile(r"\bhcpcs\b|\bdme\b|\bsuppl(?:y|ies)\b|\bwheelchair|\bwalker|\bcane\b|\bstrips?\b|"
                         r"\bnebuli[sz]er|\bG-?code|\bmedicare (?:visit|clinic)|\bclinic visit\b|\bwellness visit|"
                         r"\bflu shot admin|\bvaccine admin|\borthosis|\bprosthe|\bcrutch|\boxygen\b", re.I)
_ICD_CUES = re.compile(r"\bicd|\bdx\b|\bdiagnos|\bcondition\b", re.I)
_CODE_OR_DATE = re.compile(r"\b[A-Za-z]\d[0-9A-Za-z](?:\.[0-9A-Za-z]{1,4})?\b|\b\d{4,5}(?:-\w\w)?\b|"
                           r"\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b")
ALTERNATIVES = 3


def system_of(text: str) -> str:
    """The code system a describing question is about."""
    if _HCPCS_CUES.search(text) and not _ICD_CUES.search(text):
        return "hcpcs"
    return "icd10cm"


def query_words(text: str) -> str:
    text = _CODE_OR_DATE.sub(" ", text)
    # "no complications", "w/o hematuria": the code sets say "without"
    text = re.sub(r"\b(?:no|w/o)\b", "without", text, flags=re.I)
    text = re.sub(r"[?!:;()\[\]\"]|\s-\s", " ", text)
    kept = [w for w in text.split() if not _ASKING.fullmatch(w.strip(",.'").lower())]
    return " ".join(w.strip(",.") for w in kept if w.strip(",."))[:300]


def _prefer_side(hits: list[dict], side: str) -> list[dict]:
    """A stated side outranks a close hit for the other or an unspecified side (the search
    engine does not yet weigh laterality)."""
    if side not in ("right", "left", "bilateral") or not hits:
        return hits
    top = hits[0].get("score", 0) or 0

    def key(item: tuple[int, dict]) -> tuple[int, int]:
        index, hit = item
        close = (hit.get("score", 0) or 0) >= 0.7 * top
        return (0 if close and side in (hit.get("title") or "").lower() else 1, index)

    return [hit for _, hit in sorted(enumerate(hits), key=key)]


def _prefer_negation(hits: list[dict], query: str) -> list[dict]:
    """ "without complications" outranks "with ... complication" among close hits."""
    negated = [w[:6] for w in re.findall(r"\bwithout (\w+)", query.lower())]
    if not negated or not hits:
        return hits
    top = hits[0].get("score", 0) or 0

    def key(item: tuple[int, dict]) -> tuple[int, int]:
        index, hit = item
        title = (hit.get("title") or "").lower()
        if (hit.get("score", 0) or 0) < 0.5 * top:
            return (0, index)
        says = sum(1 if re.search(rf"\bwithout\b[^,;]*{w}|\bno {w}", title) else -1 if w in title else 0
                   for w in negated)
        return (-says, index)

    return [hit for _, hit in sorted(enumerate(hits), key=key)]


def resolve(kb: KB, facts, answer: Answer) -> None:
    if any(line.role == RECOMMENDED for line in answer.lines):
        return  # the named codes answered it; search candidates are added by the engine's fallback
    add_candidates(kb, facts, answer, recommend=True)


_FOR_DIAGNOSIS = re.compile(r"\bfor (?:a |an |the )?(?:dx (?:of )?|diagnosis (?:of )?)?([a-z][a-z ,'/-]{4,80})", re.I)
MIN_DIAGNOSIS_SCORE = 15.0


def diagnosis_beside_procedure(kb: KB, facts, answer: Answer) -> None:
    """ "71046 interpretation only for pneumonia, unspecified organism": the procedure is named,
    the diagnosis described -- search it in ICD-10-CM, and keep it only on a strong match."""
    if any(line.system == "icd10cm" for line in answer.lines) or not any(
            line.system in ("cpt", "hcpcs") for line in answer.recommended):
        return
    m = _FOR_DIAGNOSIS.search(facts.text)
    if not m:
        return
    query = query_words(m.group(1))
    hits = [h for h in kb.search(query, "icd10cm", limit=3) if h.get("billable")] if len(query) >= 4 else []
    if hits and (hits[0].get("score") or 0) >= MIN_DIAGNOSIS_SCORE and kb.reportable(hits[0]["code"]):
        code = hits[0]["code"]
        answer.add(Line(code, "icd10cm", RECOMMENDED, f'the diagnosis described ("{query}"), best match in '
                        f"{kb.version(code)}", hits[0].get("title") or "", version=kb.version(code),
                        source="describe"))


def add_candidates(kb: KB, facts, answer: Answer, *, recommend: bool) -> None:
    system = answer.system or system_of(facts.text)
    answer.system = system
    query = query_words(facts.text)
    answer.search_query = query
    if len(query) < 3:
        return
    hits = [h for h in kb.search(query, system, limit=8) if h.get("system") == system]
    if not hits:
        answer.ask_once("What exactly was documented (condition, site, laterality, encounter)? The code sets "
                        "found nothing matching the question's words.")
        return
    hits = _prefer_negation(_prefer_side(hits, facts.laterality), query)
    chosen = 0
    for hit in hits:
        code = hit["code"]
        if not hit.get("billable"):
            rows = kb.billable_under(code)
            row, _ = pick_by_words(facts.text, rows, hit.get("title") or "")
            if row is None:
                continue
            code, title = row.code, row.title
        else:
            title = hit.get("title") or ""
        if not kb.reportable(code) or answer.line(code):
            continue
        role = RECOMMENDED if recommend and chosen == 0 else ALTERNATIVE
        why = (f'best match in {kb.version(code) or system} for "{query}"' if role == RECOMMENDED
               else f'another match for "{query}"; confirm against the record')
        answer.add(Line(code, system, role, why, title, version=kb.version(code), source="describe"))
        chosen += 1
        if chosen > ALTERNATIVES:
            break
    answer.facts["search_top_score"] = hits[0].get("score", 0)
    answer.facts["search_margin"] = (hits[0].get("score", 0) - hits[1].get("score", 0)) if len(hits) > 1 else 99
