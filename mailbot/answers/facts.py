"""What a question states, as data: codes, date of service, setting, payer, patient, doses.

``extract(text, message_date=...)`` -> :class:`Facts`.  Everything found is
kept with how it was found, so a reviewer can see why the engine assumed
what it did ("date of service assumed from the message date 2026-11-16").

Codes are found by :func:`mailbot.codes.extract.find_codes` after the loose
forms coders type are tidied (``e11 .22`` -> ``E11.22``, ``n18 6`` ->
``N18.6``, ``M54.5x`` -> ``M54.5`` asked for its children).  Whether a loose
reading is a real code is for the engine to check against the code sets.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from mailbot.codes.extract import find_codes

# -- dates ----------------------------------------------------------------
_MONTHS = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
_NUMERIC_DATE = re.compile(r"(?<![\d/.-])(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})(?![\d/])")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_WORD_DATE = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b",
                        re.I)
# Words right before a date that say it is the date of service.
_DOS_CUE = re.compile(r"(?:\bdos\b|date of service|service date|\bseen\b|\bon\b|\bgiven\b|\bvisit\b|"
                      r"\bperformed\b|\bdone\b|\bfor\b)[\s:#-]*$", re.I)
_NOT_DOS_CUE = re.compile(r"(?:\bdob\b|birth|\bborn\b|\breceived\b|\bdenied on\b|\bsent\b)[\s:#-]*$", re.I)

# -- codes written loosely ------------------------------------------------
# "e11 .22", "E11. 22", "e11 . 22" -> E11.22
_SPACED_DOT = re.compile(r"\b([A-Za-z]\d[0-9A-Za-z])\s*\.\s+([0-9A-Za-z]{1,4})\b|\b([A-Za-z]\d[0-9A-Za-z])\s+\.\s*([0-9A-Za-z]{1,4})\b")
# "n18 6", "m54 50": a category, a space, then the rest (checked against the code sets later)
_SPACED = re.compile(r"\b([A-Za-z]\d{2})\s+(\d[0-9A-Za-z]{0,3})\b(?!\s*(?:mg|mcg|g|ml|cc|units?|%|days?|years?|/))", re.I)
# "M54.5x", "S52.52X" -- a placeholder asking which subcode
_PLACEHOLDER = re.compile(r"\b([A-Za-z]\d[0-9A-Za-z]\.?[0-9A-Za-z]{0,3}?)[xX]+(?![0-9A-Za-z])")

# -- the rest -------------------------------------------------------------
SETTINGS = (  # first match wins: the most specific phrases first
    ("asc", re.compile(r"\b(?:asc|ambulatory surg(?:ery|ical) cent(?:er|re))\b", re.I)),
    ("hospital", re.compile(r"\b(?:hospital outpatient|outpatient hospital|hopd|opps|facility|"
                            r"hospital|outpatient dept|ed visit|emergency department)\b", re.I)),
    ("practitioner", re.compile(r"\b(?:office|physician|practitioner|clinic visit|professional|"
                                r"provider|surgeon|pfs)\b", re.I)),
)
PAYERS = (
    ("Medicare", re.compile(r"\bmedicare\b|\bmcr\b|\bcms\b|\babn\b", re.I)),
    ("Medicaid", re.compile(r"\bmedicaid\b|\bmcd\b", re.I)),
    ("commercial", re.compile(r"\b(?:commercial|bcbs|blue cross|aetna|cigna|uhc|united ?health|humana|"
                              r"private insurance)\b", re.I)),
)
_ANATOMY = (r"(?:knee|shoulder|hip|ankle|wrist|elbow|foot|feet|hand|eye|ear|arm|leg|side|sided|heel|toe|thumb|"
            r"finger|breast|kidney|lung|radius|ulna|femur|tibia|fibula|humerus|forearm|thigh|buttock|"
            r"lower|upper|great)s?")
_LATERALITY = (
    ("bilateral", re.compile(r"\b(?:bilateral(?:ly)?|bilat|both (?:knees|sides|shoulders|hips|eyes|ears|"
                             r"feet|hands|wrists|ankles|elbows|legs|arms)|b/l)\b", re.I)),
    # "right" alone is too common ("is that right?"): a side is a side of something
    ("right", re.compile(r"\b(?:right|rt|r)[- ]+(?:\w+[- ]){0,2}" + _ANATOMY + r"\b|\b(?:rt|RT)\b|\(right\)", re.I)),
    ("left", re.compile(r"\b(?:left|lt|l)[- ]+(?:\w+[- ]){0,2}" + _ANATOMY + r"\b|\b(?:lt|LT)\b|\(left\)", re.I)),
)
_ENCOUNTER = (
    ("sequela", re.compile(r"\bsequela[e]?\b|\blate effect\b", re.I)),
    ("subsequent", re.compile(r"\bsubsequent\b|\bfollow[- ]?up\b|\bf/u\b|\brecheck\b", re.I)),
    ("initial", re.compile(r"\binitial\b|\binit\b|\bfirst (?:visit|encounter)\b|\bactive treatment\b", re.I)),
)
_AGE = re.compile(r"\b(\d{1,3})\s*(?:-\s*)?(?:yo|y/o|y\.o\.|yr old|year[- ]old|years old|yrs? old)\b", re.I)
_SEX = (
    ("female", re.compile(r"\b(?:female|woman|girl|she|her)\b|\b\d{1,3}\s*(?:yo|y/o)?\s*F\b", re.I)),
    ("male", re.compile(r"\b(?:male|man|boy|he|his)\b|\b\d{1,3}\s*(?:yo|y/o)?\s*M\b", re.I)),
)
UNIT_WORDS = {"mg": "mg", "milligram": "mg", "milligrams": "mg", "mcg": "mcg", "microgram": "mcg",
              "micrograms": "mcg", "ug": "mcg", "g": "g", "gm": "g", "gram": "g", "grams": "g",
              "ml": "ml", "cc": "ml", "units": "units", "unit": "units", "u": "units", "l": "l", "liter": "l",
              "liters": "l", "iu": "units", "meq": "meq"}
_DOSE = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)\s*(mg|milligrams?|mcg|micrograms?|ug|gm|grams?|g|ml|cc|"
                   r"iu|units?|u|meq|liters?|l)\b", re.I)
_WASTE = re.compile(r"wast|discard|thrown|unused|left over|leftover", re.I)
_NO_WASTE = re.compile(r"\b(?:no|nothing|none|not|without)\b[\w\s-]{0,20}\b(?:wast|discard)|"
                       r"\b(?:wast|discard)\w*\s*(?::\s*)?(?:none|0|zero)\b", re.I)
ROUTES = (
    ("intra-articular", re.compile(r"\bintra[- ]?articular\b|\binto (?:\w+ ){0,2}"
                                   r"(?:knee|shoulder|hip|joint)|\bjoint injection\b", re.I)),
    ("IV", re.compile(r"\bIV\b|\bintravenous(?:ly)?\b|\binfusion\b|\bIVP\b|\bpush\b", re.I)),
    ("IM", re.compile(r"\bIM\b|\bintramuscular(?:ly)?\b", re.I)),
    ("subcutaneous", re.compile(r"\bSQ\b|\bSC\b|\bsubq\b|\bsub-?cut(?:aneous)?(?:ly)?\b", re.I)),
    ("inhalation", re.compile(r"\binhal\w*|\bnebuli[sz]\w*", re.I)),
    ("oral", re.compile(r"\bPO\b|\boral(?:ly)?\b|\bby mouth\b", re.I)),
)
_SUBJECT = re.compile(r"^\s*subject\s*:\s*(.*)$", re.I | re.M)


@dataclass
class Dose:
    amount: float
    unit: str            # mg, mcg, g, ml, units, ...
    text: str
    wasted: bool = False
    billed: bool = False     # "J1010 x 100 units": billing units stated, not a dose


@dataclass
class Facts:
    text: str                                    # the question without the literal "Subject:" word
    subject: str = ""
    codes: list[str] = field(default_factory=list)          # canonical, modifiers attached (99213-25)
    loose_codes: dict[str, str] = field(default_factory=dict)  # canonical -> as written, for loose forms
    placeholder_codes: list[str] = field(default_factory=list)  # M54.5x -> M54.5 (asked for its children)
    date_of_service: date | None = None
    date_source: str = ""                        # stated | in text | message date | ""
    dates_stated: list[str] = field(default_factory=list)
    contradictory_dates: bool = False
    setting: str = ""                            # practitioner | hospital | asc | "" (not stated)
    payer: str = ""
    laterality: str = ""
    encounter: str = ""
    age: int | None = None
    sex: str = ""
    doses: list[Dose] = field(default_factory=list)
    route: str = ""
    no_waste: bool = False
    year_only: int | None = None

    @property
    def given_dose(self) -> Dose | None:
        return next((d for d in self.doses if not d.wasted and not d.billed), None)

    @property
    def wasted_dose(self) -> Dose | None:
        return next((d for d in self.doses if d.wasted and not d.billed), None)

    @property
    def billed_units(self) -> int | None:
        return next((int(d.amount) for d in self.doses if d.billed), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["date_of_service"] = self.date_of_service.isoformat() if self.date_of_service else None
        data.pop("text")
        return data


def extract(text: str, *, message_date: date | None = None) -> Facts:
    """The facts ``text`` states; ``message_date`` (the Date header) is the fallback date of service."""
    raw = text or ""
    subject = ""
    if m := _SUBJECT.search(raw):
        subject = m.group(1).strip()
    # The subject is part of the question, the literal word "Subject" is not.
    body = _SUBJECT.sub(lambda m: m.group(1), raw).strip()
    facts = Facts(text=body, subject=subject)
    _dates(facts, body, message_date)
    _codes(facts, body)
    facts.setting = next((name for name, rx in SETTINGS if rx.search(body)), "")
    facts.payer = next((name for name, rx in PAYERS if rx.search(body)), "")
    lat = [name for name, rx in _LATERALITY if rx.search(body)]
    facts.laterality = "bilateral" if "bilateral" in lat or {"right", "left"} <= set(lat) else (lat[0] if lat else "")
    facts.encounter = next((name for name, rx in _ENCOUNTER if rx.search(body)), "")
    if m := _AGE.search(body):
        facts.age = int(m.group(1))
    facts.sex = next((name for name, rx in _SEX if rx.search(body)), "")
    facts.no_waste = bool(_NO_WASTE.search(body))
    facts.doses = _doses(body, facts.no_waste)
    facts.route = next((name for name, rx in ROUTES if rx.search(body)), "")
    return facts


def tidy_codes(text: str) -> tuple[str, dict[str, str], list[str]]:
    """``text`` with loose code forms written canonically; the loose forms; the placeholder codes."""
    loose: dict[str, str] = {}
    placeholders: list[str] = []

    def dotted(m: re.Match) -> str:
        head, tail = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        code = f"{head.upper()}.{tail.upper()}"
        loose[code] = m.group(0)
        return code

    def spaced(m: re.Match) -> str:
        code = f"{m.group(1).upper()}.{m.group(2).upper()}"
        loose[code] = m.group(0)
        return code

    def placeholder(m: re.Match) -> str:
        base = m.group(1).upper().rstrip(".")
        placeholders.append(base if "." in base or len(base) == 3 else f"{base[:3]}.{base[3:]}")
        return " " + placeholders[-1] + " "

    text = _SPACED_DOT.sub(dotted, text)
    text = _PLACEHOLDER.sub(placeholder, text)
    text = _SPACED.sub(spaced, text)
    return text, loose, placeholders


def _codes(facts: Facts, body: str) -> None:
    # dates and doses are not codes ("11/10/2026", "J1010 40 mg"): blank dates out first
    cleaned = _NUMERIC_DATE.sub(" ", _ISO_DATE.sub(" ", body))
    tidied, loose, placeholders = tidy_codes(cleaned)
    facts.codes = find_codes(tidied)
    facts.loose_codes = {code: raw for code, raw in loose.items() if code in facts.codes}
    facts.placeholder_codes = [c for c in placeholders if c in facts.codes]


def _dates(facts: Facts, body: str, message_date: date | None) -> None:
    found: list[tuple[date, bool]] = []   # (date, cued as the date of service)
    for m in _NUMERIC_DATE.finditer(body):
        month, day, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
        year = year + 2000 if year < 100 else year
        _add_date(found, body, m.start(), year, month, day)
    for m in _ISO_DATE.finditer(body):
        _add_date(found, body, m.start(), int(m.group(1)), int(m.group(2)), int(m.group(3)))
    for m in _WORD_DATE.finditer(body):
        _add_date(found, body, m.start(), int(m.group(3)), _MONTHS[m.group(1).lower()[:3]], int(m.group(2)))
    facts.dates_stated = [d.isoformat() for d, _ in found]
    cued = [d for d, is_dos in found if is_dos]
    chosen = cued or [d for d, _ in found]
    if chosen:
        facts.date_of_service = chosen[0]
        facts.date_source = "stated" if cued else "in text"
        facts.contradictory_dates = len(set(cued or chosen)) > 1
        return
    year = re.search(r"\b(20[1-3]\d)\b(?:\s*(?:dos|dates?|claims?|services?))", body, re.I)
    if year:
        facts.year_only = int(year.group(1))
    if message_date is not None and (facts.year_only is None or facts.year_only == message_date.year):
        facts.date_of_service = message_date
        facts.date_source = "message date"
    elif facts.year_only is not None:
        facts.date_of_service = date(facts.year_only, 7, 1)
        facts.date_source = "year stated"


def _add_date(found: list[tuple[date, bool]], body: str, start: int, year: int, month: int, day: int) -> None:
    try:
        value = date(year, month, day)
    except ValueError:
        return
    before = body[max(0, start - 30):start]
    if _NOT_DOS_CUE.search(before):
        return
    found.append((value, bool(_DOS_CUE.search(before))))


def _doses(body: str, no_waste: bool) -> list[Dose]:
    doses = []
    for m in _DOSE.finditer(body):
        unit = UNIT_WORDS.get(m.group(2).lower())
        if unit is None:
            continue
        # "Botox 100 units" is a dose; "how many units" is not (no number)
        amount = float(m.group(1).replace(",", ""))
        # "20 mg wasted", "wasted 20 mg", "discarded: 20 mg" -- the words right next to the dose
        window = body[max(0, m.start() - 12):m.start()] + " " + body[m.end():m.end() + 14]
        wasted = bool(_WASTE.search(window)) and not no_waste
        billed = unit == "units" and bool(re.search(r"(?:\bx|\*)\s*$", body[max(0, m.start() - 4):m.start()]))
        doses.append(Dose(amount, unit, m.group(0), wasted, billed))
    # "1 gram" etc. stay as stated; conversion happens against the descriptor's unit
    return doses
