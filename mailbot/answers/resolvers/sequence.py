"""Sequencing: "use additional code" / "code first" partners, and the combination guidelines.

Two sources, both cited in the answer:

- the tabular notes of each recommended ICD-10-CM code and its categories
  (E11.22 "use additional code to identify stage of chronic kidney disease
  (N18.1-N18.6)"): the partner is added when the question states what the
  note asks for, the code within the note's range picked by the question's
  words ("stage 3a" -> N18.31, "BMI 41" -> Z68.41); a "code first" partner is
  sequenced before; when the note applies but the detail is missing, ONE
  question asks for it;
- the ICD-10-CM Official Guidelines' presumed links (table below):
  hypertension with heart failure and / or chronic kidney disease.

Then :func:`diagnosis_conflicts` (run by the engine on the final answer)
asks the diagnosis edits (:func:`mailbot.codes.dxedits.diagnosis_edits`)
about the recommended ICD-10-CM codes in their order: age and sex conflicts
with what the question states, a manifestation code listed first (moved
after its underlying condition), a code unacceptable as first-listed,
Excludes1 pairs, and "code first" / "use additional code" partners still
missing -- each stated with the edit table or tabular note behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.answers.kb import KB
from mailbot.answers.model import RECOMMENDED, Answer, Line

# Coders' abbreviations, expanded before matching a note's words (from the
# ICD-10-CM index's own terms: "CKD", "ESRD", "CHF" are how charts write them).
ABBREVIATIONS = {
    "ckd": "chronic kidney disease", "esrd": "end stage renal disease chronic kidney disease stage 6",
    "htn": "hypertension", "chf": "congestive heart failure", "hf": "heart failure", "dm": "diabetes",
    "t2dm": "type 2 diabetes", "t1dm": "type 1 diabetes", "copd": "chronic obstructive pulmonary disease",
    "afib": "atrial fibrillation", "hx": "history", "fx": "fracture", "bmi": "body mass index",
    "no": "without", "w/o": "without", "w/": "with", "uti": "urinary tract infection",
}
_NOTE_FILLER = {"code", "to", "identify", "the", "if", "applicable", "known", "use", "additional", "any",
                "associated", "of", "type", "site", "stage", "for", "adults", "or", "pediatrics", "such", "as",
                "underlying", "condition", "a", "an", "and", "with", "using", "ncp", "nos"}
_GENERIC = {"and", "or", "of", "the", "with", "without", "in", "a", "to", "for", "nos", "other", "classified",
            "elsewhere"}
# compared with stemmed words (see words())
_NOTE_FILLER = {w[:6] for w in _NOTE_FILLER}
_GENERIC = {w[:6] for w in _GENERIC}
_REF = re.compile(r"\(([A-Z]\d[0-9A-Z](?:\.[0-9A-Z-]*)?(?:\s*[-,]\s*[A-Z]\d[0-9A-Z](?:\.[0-9A-Z-]*)?)*)\)")
_RANGE_IN_TITLE = re.compile(r"(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Guideline:
    name: str
    requires: tuple[str, ...]       # every pattern must match the (expanded) question
    excludes: str                   # none of this may match
    codes: tuple[str, ...]
    why: str
    source: str


_HTN = r"\bhypertensi\w*|\bhtn\b"
_HF = r"heart failure|\bchf\b|\bhf\b"
_CKD = r"chronic kidney|\bckd\b|\besrd\b|end stage renal|renal disease"
_STAGE5 = r"stage 5|stage v\b|\besrd\b|end stage|stage 6|\bckd 5\b"
GUIDELINES: tuple[Guideline, ...] = (
    Guideline("htn-heart-ckd5", (_HTN, _HF, _CKD, _STAGE5), r"$^", ("I13.2",),
              "hypertension with heart failure and stage 5 / end-stage CKD: the combination code (I13.2)",
              "ICD-10-CM Official Guidelines I.C.9.a.3"),
    Guideline("htn-heart-ckd", (_HTN, _HF, _CKD), _STAGE5, ("I13.0",),
              "hypertension with heart failure and CKD stage 1-4: the combination code (I13.0)",
              "ICD-10-CM Official Guidelines I.C.9.a.3"),
    Guideline("htn-ckd5", (_HTN, _CKD, _STAGE5), _HF, ("I12.0",),
              "hypertension with stage 5 / end-stage CKD is presumed linked: I12.0",
              "ICD-10-CM Official Guidelines I.C.9.a.2"),
    Guideline("htn-ckd", (_HTN, _CKD), _HF + "|" + _STAGE5, ("I12.9",),
              "hypertension with CKD stage 1-4 is presumed linked: I12.9",
              "ICD-10-CM Official Guidelines I.C.9.a.2"),
    Guideline("htn-heart", (_HTN, _HF), _CKD, ("I11.0",),
              "hypertension with heart failure is presumed linked: I11.0, with the I50.- type of heart failure",
              "ICD-10-CM Official Guidelines I.C.9.a.1"),
    Guideline("esrd", (r"\besrd\b|end stage renal",), r"$^", ("N18.6",),
              "end-stage renal disease is N18.6", "ICD-10-CM tabular N18.6"),
    Guideline("dialysis", (r"\bdialysis\b",), r"\bnon-?compliance|\bunderdosing", ("Z99.2",),
              "dependence on renal dialysis (Z99.2) is reported with ESRD", "ICD-10-CM tabular Z99.2"),
)


def expand(text: str) -> str:
    out = (text or "").lower().replace("'s", "")
    for short, long in ABBREVIATIONS.items():
        out = re.sub(rf"(?<![\w/]){re.escape(short)}(?![\w/])", f"{short} {long}", out)
    return out


def words(text: str) -> set[str]:
    """Lower-case words cut to 6 letters, a crude stem both sides share ("ulcers" = "ulcer",
    "diabetic" = "diabetes", "hypertensive" = "hypertension")."""
    return {(w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w)[:6]
            for w in re.findall(r"[a-z0-9]+", text.lower())}


def resolve(kb: KB, facts, answer: Answer) -> None:
    asked = expand(facts.text)
    _guidelines(kb, asked, answer)
    _notes(kb, facts, asked, answer)


def _guidelines(kb: KB, asked: str, answer: Answer) -> None:
    for rule in GUIDELINES:
        if all(re.search(p, asked) for p in rule.requires) and not re.search(rule.excludes, asked):
            for code in rule.codes:
                if kb.reportable(code):
                    answer.add(Line(code, "icd10cm", RECOMMENDED, rule.why, kb.title(code),
                                    version=kb.version(code), source="sequence"))
                    answer.rule(rule.why, rule.source)
            if rule.name.startswith("htn"):
                # the combination code replaces a plain hypertension code
                plain = answer.line("I10")
                if plain is not None and plain.source == "describe":
                    answer.lines.remove(plain)


def _notes(kb: KB, facts, asked: str, answer: Answer) -> None:
    asked_words = words(asked)
    done: set[str] = set()
    for line in list(answer.recommended):
        if line.system != "icd10cm" or line.code in done:
            continue
        done.add(line.code)
        card = kb.card(line.code)
        notes = [(key, text, line.code) for key in ("use_additional", "code_first")
                 for text in (card.get("notes") or {}).get(key, [])]
        for inherited in card.get("inherited_notes") or []:
            for key in ("use_additional", "code_first"):
                notes += [(key, text, inherited["code"]) for text in inherited["notes"].get(key, [])]
        for key, text, owner in notes:
            _partner(kb, facts, asked, asked_words, answer, line, key, text, owner)


def _refs(kb: KB, text: str) -> list:
    rows = []
    for group in _REF.findall(text):
        for part in [p.strip() for p in group.split(",") if p.strip()]:
            if re.fullmatch(r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]*)?-[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]*)?", part):
                start, end = part.split("-")
                rows += kb.in_range(start, end)
            else:
                code = part.rstrip("-").rstrip(".")
                rows += kb.in_range(code, code) if kb.card(code).get("found") else []
    unique = {row.code: row for row in rows}
    return list(unique.values())


def _partner(kb, facts, asked, asked_words, answer, line, key, text, owner) -> None:
    # cite the note through the reported code: a category (a header) is not written into the answer
    owner = line.code if owner == line.code else f"{line.code} (note of its category)"
    subject = text.split("(")[0]
    subject_words = words(expand(subject)) - _NOTE_FILLER
    if not subject_words:
        return
    # what the note adds beyond the code itself must be stated: N18.31 "code first hypertensive
    # chronic kidney disease" needs "hypertensive"; E11.22 "stage of chronic kidney disease" always applies
    key_words = (subject_words - words(line.title)) or subject_words
    if words(line.title) >= subject_words:
        key_words = set()
    present = len(key_words & asked_words) / len(key_words) if key_words else 1.0
    if present < 0.6:
        return
    candidates = [row for row in _refs(kb, text) if row.code != line.code]
    if not candidates:
        return
    if any(answer.line(row.code) and answer.line(row.code).role == RECOMMENDED for row in candidates):
        _order(answer, line, key, next(r.code for r in candidates if answer.line(r.code)))
        answer.rule(f"{owner}: {key.replace('_', ' ')} {text}", f"{line.version or 'ICD-10-CM'} tabular")
        return
    common = None
    for row in candidates:
        w = words(row.title) - _GENERIC
        common = w if common is None else common & w
    numbers = [float(n) for n in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])", facts.text)]
    scored = []
    for row in candidates:
        title_words = words(row.title)
        extra = " ".join((row.notes or {}).get("inclusion_terms", []))
        distinct = (title_words | words(extra)) - (common or set()) - _GENERIC
        score = 2 * len({w for w in distinct & asked_words if not w.isdigit()})
        score += 2 * sum(1 for w in distinct if w.isdigit() and _number_stated(row.title, w, asked))
        for lo, hi in _RANGE_IN_TITLE.findall(row.title):
            if any(float(lo) <= n <= float(hi) + 0.099 for n in numbers):
                score += 3
        score -= 0.1 * len(title_words - asked_words)
        scored.append((score, row))
    scored.sort(key=lambda item: -item[0])
    best, row = scored[0]
    tie = len(scored) > 1 and scored[1][0] == best
    chosen_as = ""
    if best < 1 or tie:
        if len(candidates) == 1:
            row = candidates[0]
        elif key_words and len(defaults := [r for r in candidates if "unspecified" in r.title.lower()]) == 1:
            # the question names the note's condition ("Alzheimer's") and nothing that picks a kind of
            # it: the condition's unspecified code, as the documentation supports (G30.9)
            row = defaults[0]
            chosen_as = "; the question states no more about it, so its unspecified code"
        else:
            need = re.sub(r"^\s*code,?\s*(?:if applicable,?\s*)?to identify\s*", "", subject).strip()
            if "sequence" not in answer.facts.get("asked_intents", []):
                # not what was asked: say it, do not ask it
                answer.rule(f"{owner}: {key.replace('_', ' ')} {text}", f"{line.version or 'ICD-10-CM'} tabular")
                return
            answer.ask_once(f"{line.code} needs an additional code for the {need}: which one does "
                            f"the record document ({_REF.search(text).group(1) if _REF.search(text) else ''})?")
            return
    answer.add(Line(row.code, "icd10cm", RECOMMENDED,
                    f"{owner} tabular note: {key.replace('_', ' ')} {text}{chosen_as}", row.title,
                    version=kb.version(row.code), source="sequence"))
    _order(answer, line, key, row.code)
    answer.rule(f"{owner}: {key.replace('_', ' ')} {text}", f"{line.version or 'ICD-10-CM'} tabular")


# diagnosis-edit kinds the answer asks about (the code may be wrong for this patient)
_PATIENT_CONFLICTS = ("age", "sex")


def diagnosis_conflicts(kb: KB, facts, answer: Answer) -> None:
    """The diagnosis edits' verdict on the recommended ICD-10-CM codes, as rules (and one question)."""
    lines = [line for line in answer.recommended if line.system == "icd10cm"]
    if not lines:
        return
    conflicts = kb.diagnosis_edits([line.code for line in lines], age=facts.age, sex=facts.sex)
    answer.facts["diagnosis_edits"] = [{k: c[k] for k in ("kind", "codes", "source", "version")} for c in conflicts]
    for conflict in conflicts:
        kind, codes = conflict["kind"], conflict["codes"]
        if kind in ("code_first_missing", "use_additional_missing") and any(
                r.text.startswith(f"{codes[0]}") and ("code first" in r.text or "use additional" in r.text)
                for r in answer.rules):
            continue   # the tabular note is already stated (or its partner asked for) by the resolver
        answer.rule(conflict["message"], f"{conflict['source']}, {conflict['version']}".strip(", "))
        if kind in _PATIENT_CONFLICTS:
            answer.ask_once(f"{conflict['message']} Is the code or the patient's {kind} as documented?")
        elif kind == "manifestation_first" and len(lines) > 1:
            # a manifestation may not lead: the underlying condition goes first
            first = answer.line(codes[0])
            answer.lines.remove(first)
            at = answer.lines.index(lines[1])
            answer.lines.insert(at + 1, first)


def _number_stated(title: str, number: str, asked: str) -> bool:
    """A bare number counts only after the same word ("stage 4"; "CKD 4" for a stage), not "type 2"."""
    m = re.search(rf"([a-z]+)\W+{number}\b", title.lower())
    if not m:
        return False
    before = m.group(1)
    if re.search(rf"\b{before}\s+{number}\b", asked):
        return True
    return before == "stage" and bool(re.search(rf"\b(?:ckd|disease)\s+{number}\b", asked))


def _order(answer: Answer, line: Line, key: str, partner: str) -> None:
    """A "code first" partner goes before the line; a "use additional" one after it."""
    other = answer.line(partner)
    if other is None:
        return
    answer.lines.remove(other)
    at = answer.lines.index(line)
    answer.lines.insert(at if key == "code_first" else at + 1, other)
