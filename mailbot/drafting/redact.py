"""PHI redaction: what an LLM may see of a coding question.

Coders paste chart snippets into their questions; names, birth dates, record
and account numbers, phone numbers, addresses and e-mail addresses must not
leave for a model.  The medical content -- codes, modifiers, terms, and the
date of service (which decides the code-set version) -- must stay.

Detection is a table of rules (``RULES``), each a kind and a pattern; every
match becomes a :class:`Span` over the original text.  Overlapping spans are
merged and replaced with ``[KIND]`` placeholders.  Two rules are deliberately
generous because missing PHI costs more than hiding a harmless word:

- every full date is redacted unless it is labelled as the date of service;
- a name found once (``Mrs. Garcia``) is redacted wherever else it occurs.

Medical codes are protected: a span that is nothing but a code-shaped token
(``99213``, ``E11.22``, ``J1030``, ``-25``) is dropped, so a CPT code is never
mistaken for a ZIP code or an account number.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date

# -- building blocks ---------------------------------------------------------

_MONTHS = ("jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           "sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?")
_MONTH_NUM = {m[:3]: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
DATE = (r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?![\d/])"
        r"|\d{4}-\d{1,2}-\d{1,2}"
        rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
        rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+\d{{4}})")
_DOS_LABEL = r"(?:\bDOS|\bdate\s+of\s+service|\bservice\s+date)"
_DOS = re.compile(_DOS_LABEL + r"\s*(?:was|is|of|on|=)?\s*[:#-]?\s*(" + DATE + ")", re.I)

_NAME_WORD = r"(?:[A-Z]['’])?[A-Z][a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z][a-z]+)?"
_NAME = rf"{_NAME_WORD}(?:\s+(?:[A-Z]\.\s*)?{_NAME_WORD}){{0,2}}"
_LAST_FIRST = rf"{_NAME_WORD},\s*{_NAME_WORD}(?:\s+[A-Z]\.)?"

# Capitalised words that follow a cue like "patient" without being a name.
_NOT_NAMES = frozenset("""
a an the this that these those his her their our my your its he she they it we i
is was has had have with without who which presented presents came comes seen
saw underwent received receives had has needs needed requires required reports
denies states stated medicare medicaid tricare aetna cigna humana anthem blue
cross shield united unitedhealthcare bcbs commercial hmo ppo type chronic acute
left right bilateral status post history new established office visit inpatient
outpatient emergency er ed icu or clinic hospital note notes dx diagnosis
procedure surgery injection exam is and or but if on in at for to from of by
age aged year years yo male female man woman boy girl child infant adult
mr mrs ms miss dr doctor provider physician np pa rn md do name id number no
dob mrn ssn account acct member policy phone tel cell fax email address
january february march april may june july august september october november
december monday tuesday wednesday thursday friday saturday sunday
icd cpt hcpcs ncci mue rvu dos modifier code codes coding question thanks
diabetes hypertension copd chf ckd covid pneumonia asthma cancer
patient patients pt member subscriber beneficiary client resident guarantor insured
son daughter wife husband mother father spouse re regarding about see please can could
would should does did why what how when where which who whom whose yes no ok okay per
""".split())

# Common given names: "John Smith" is a name even without a cue.
_FIRST_NAMES = frozenset("""
james john robert michael william david richard joseph thomas charles christopher
daniel matthew anthony mark donald steven paul andrew joshua kenneth kevin brian
george timothy ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan
stephen larry justin scott brandon benjamin samuel gregory alexander frank patrick
raymond jack dennis jerry tyler aaron jose adam nathan henry douglas zachary peter
kyle ethan walter noah jeremy christian keith roger terry gerald harold sean austin
carl arthur lawrence dylan jesse jordan bryan billy joe bruce gabriel logan albert
willie alan juan wayne elijah randy roy vincent ralph eugene russell bobby mason
philip louis mary patricia jennifer linda elizabeth barbara susan jessica sarah
karen lisa nancy betty margaret sandra ashley kimberly emily donna michelle carol
amanda dorothy melissa deborah stephanie rebecca sharon laura cynthia kathleen amy
angela shirley anna brenda pamela emma nicole helen samantha katherine christine
debra rachel carolyn janet catherine maria heather diane ruth julie olivia joyce
virginia victoria kelly lauren christina joan evelyn judith megan andrea cheryl
hannah jacqueline martha gloria teresa ann sara madison frances kathryn janice
jean abigail alice judy sophia grace denise amber doris marilyn danielle beverly
isabella theresa diana natalie brittany charlotte marie kayla alexis lori
luis carlos miguel jorge pedro manuel ana rosa carmen lucia sofia mohammed ahmed
ali fatima wei li mei hiroshi yuki raj priya anil sunita olga ivan dmitri
""".split())

_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|"
           "NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|PR")
_STREET = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
           r"Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Trail|Trl|Square|Sq|Loop|Pike)")
_UNIT = r"(?:,?\s*(?:Apt|Apartment|Unit|Suite|Ste|#)\.?\s*#?[A-Za-z0-9-]+)?"
_CITY_STATE_ZIP = rf"[A-Z][a-zA-Z]+(?:\s[A-Z][a-zA-Z]+){{0,2}},?\s+(?:{_STATES})\b(?:\s+\d{{5}}(?:-\d{{4}})?)?"

# A whole span that is only a medical code is never PHI.
_CODE_ONLY = re.compile(
    r"^(?:\d{4}[0-9FTUM]|[A-VX-Z]\d{4}|[A-TV-Z]\d[0-9A-Z](?:\.?[0-9A-Z]{1,4})?|-?\d{2}|[A-Z]{2})$", re.I)


_PAIR = re.compile(rf"\b({_NAME_WORD})\s+((?:[A-Z]\.\s*)?)({_NAME_WORD})(?:\s+{_NAME_WORD})?\b")
# Capitalised words that often stand next to each other in coding mail
# without being a person (payers, places in a practice, document parts).
_NOT_NAME_PAIRS = frozenset("""
part advantage shield healthcare health care united kaiser mayo clinic center centers
medical services service hospital general regional university county state national
physician fee schedule schedule guidelines manual official coding clinic quarterly
table index tabular alphabetic chapter section appendix edit edits rule rules
department dept unit floor wing lab laboratory radiology pathology pharmacy billing
front desk team staff office hello hi dear thanks thank best regards sincerely
nurse note notes practice group associates family internal medicine surgery surgical
orthopedic orthopedics cardiology oncology pediatrics urgent primary home plan plans
disease diseases syndrome disorder dementia body cell cells palsy sarcoma lymphoma tumor
tumour fever virus infection injury fracture failure insufficiency stenosis atrophy
total partial knee hip shoulder elbow wrist ankle foot hand spine spinal lumbar cervical
thoracic heart kidney renal liver lung brain breast colon skin eye ear nose throat
arthroscopy arthroplasty replacement repair biopsy injection ablation cryoablation
excision incision drainage debridement catheter stent graft bypass transplant screening
mellitus insulin pressure blood acute chronic stage grade class level type mild moderate
severe major minor primary secondary malignant benign neoplasm carcinoma pneumonia sepsis
obesity depression anxiety pain ulcer wound care management evaluation visit consultation
modifier modifiers code codes unit units mue ncci rvu global period diagnosis diagnostic
""".split())


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]
    group: int = 0            # which group is the PHI (0: the whole match)


def _r(kind: str, pattern: str, group: int = 0, flags: int = 0) -> Rule:
    return Rule(kind, re.compile(pattern, flags), group)


I = re.I
RULES: tuple[Rule, ...] = (
    _r("EMAIL", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    _r("SSN", r"\b\d{3}-\d{2}-\d{4}\b"),
    _r("SSN", r"\b(?:SSN|SS#|social\s+security(?:\s+(?:number|no\.?|#))?)\s*[:#]?\s*(\d{3}[- ]?\d{2}[- ]?\d{4})\b", 1, I),
    _r("PHONE", r"(?<![\w-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}\b(?:\s*(?:x|ext\.?)\s*\d{1,5})?"),
    _r("PHONE", r"\b(?:phone|tel|telephone|cell|mobile|fax|ph)\.?\s*(?:#|no\.?|number)?\s*[:#]?\s*(\+?\d[\d\s().-]{8,14}\d)", 1, I),
    _r("MRN", r"\b(?:MRN|MR#|MR\s+(?:no|num|number)\.?|med(?:ical)?\s+rec(?:ord)?\.?\s*(?:number|no\.?|num|#)?|chart\s*(?:number|no\.?|#))"
              r"\s*(?:is|was)?\s*[:#=]?\s*#?\s*([A-Z]{0,4}-?\d[A-Z0-9-]{3,})", 1, I),
    _r("ACCOUNT", r"\b(?:acct|account|member|subscriber|policy|insurance|ins|claim|encounter|visit|invoice|"
                  r"group|medicaid|medicare|beneficiary|patient|pt|guarantor|case|HICN|MBI|ID)"
                  r"(?:\s+(?:id|no\.?|num|number|#))?\s*(?:is|was)?\s*[:#=]\s*#?\s*([A-Z]{0,4}-?\d[A-Z0-9-]{3,})", 1, I),
    _r("ACCOUNT", r"\b(?:acct|account|member|subscriber|policy|insurance|claim|encounter|invoice|group|"
                  r"medicaid|medicare|beneficiary|patient|guarantor|case)\s+(?:id|no\.?|num|number|#)\s*(?:is|was)?\s*"
                  r"[:#=]?\s*#?\s*([A-Z]{0,4}-?\d[A-Z0-9-]{3,})", 1, I),
    _r("ACCOUNT", r"\b(?:policy|member|subscriber|account|claim|group|medicaid|medicare|encounter)\s+#?\s*"
                  r"([A-Z]{0,4}-?\d{5,}[A-Z0-9-]*|[A-Z]{1,4}\d[A-Z0-9-]{5,})", 1, I),
    _r("ACCOUNT", r"\b(?:MBI|HICN|acct)\s*(?:is|was)?\s*[:#=]?\s*#?\s*([0-9][A-Z0-9-]{5,}|[A-Z]{1,4}\d[A-Z0-9-]{4,})", 1, I),
    _r("DOB", r"\b(?:DOB|D\.O\.B\.?|date\s+of\s+birth|birth\s*date|birthday|born(?:\s+on)?)\s*(?:is|was)?\s*[:#=-]?\s*(" + DATE + ")", 1, I),
    _r("DATE", DATE, 0, I),
    _r("ADDRESS", r"\b\d{1,6}\s+(?:[NSEW]\.?\s+)?(?:[A-Z0-9][a-zA-Z0-9]*\.?\s+){1,4}" + _STREET + r"\b\.?" + _UNIT
                  + rf"(?:,?\s+{_CITY_STATE_ZIP})?"),
    _r("ADDRESS", r"\bP\.?\s?O\.?\s+Box\s+\d+" + rf"(?:,?\s+{_CITY_STATE_ZIP})?", 0, I),
    _r("ADDRESS", rf"\b[A-Z][a-zA-Z]+(?:\s[A-Z][a-zA-Z]+){{0,2}},\s*(?:{_STATES})\s+\d{{5}}(?:-\d{{4}})?\b"),
    _r("NAME", rf"\b(?:Mr|Mrs|Ms|Mx|Miss)\.?\s+((?:[A-Z]\.\s*)?{_NAME})", 1),
    _r("NAME", rf"(?i:\b(?:patient|pt|member|subscriber|beneficiary|client|resident|guarantor|insured|son|daughter|"
               rf"wife|husband|mother|father|spouse)(?:'s|’s)?(?:\s+(?:name|is|named|called))*\s*[:,=-]?)\s*({_LAST_FIRST}|{_NAME})", 1),
    _r("NAME", rf"(?i:\bname\s*(?:is|was)?\s*[:=-]?)\s*({_LAST_FIRST}|{_NAME})", 1),
    _r("NAME", rf"(?i:\b(?:for|re|regarding|about|with|saw|see)\b)\s*:?\s*({_NAME_WORD}\s+(?:[A-Z]\.\s*)?{_NAME_WORD})(?=\s*(?:\(|,\s*(?:DOB|MRN|age|a\s|an\s|\d)|\s+(?:DOB|MRN|age)\b))", 1),
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


@dataclass
class Redaction:
    """The redacted text, the spans (over the original) and the date of
    service found, which the drafting context needs."""

    text: str
    spans: list[Span] = field(default_factory=list)
    date_of_service: date | None = None

    def summary(self) -> list[dict]:
        """What was redacted, without the PHI itself (for audit and display)."""
        return [asdict(s) for s in self.spans]

    @property
    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for span in self.spans:
            counts[span.kind] = counts.get(span.kind, 0) + 1
        return counts


def redact(text: str) -> Redaction:
    """Find PHI in ``text``; return the redacted text with ``[KIND]`` placeholders."""
    dos_spans = [(m.start(1), m.end(1)) for m in _DOS.finditer(text)]
    found: list[Span] = []
    for rule in RULES:
        for match in rule.pattern.finditer(text):
            start, end = match.span(rule.group)
            if start < 0 or end <= start:
                continue
            if rule.kind == "DATE" and any(s <= start and end <= e for s, e in dos_spans):
                continue
            if rule.kind == "NAME":
                span = _name_span(text, start, end)
                if span is None:
                    continue
                start, end = span
            if _CODE_ONLY.match(text[start:end].strip()) and not _labelled_identifier(rule.kind, text[start:end]):
                continue
            found.append(Span(start, end, rule.kind))
    found.extend(_lowercase_names(text))
    found.extend(_repeated_names(text, [s for s in found if s.kind == "NAME"]))
    spans = _merge(found)
    return Redaction(_apply(text, spans), spans, _first_date(text, dos_spans))


def _labelled_identifier(kind: str, token: str) -> bool:
    """A code-shaped token that is an identifier all the same: found by an
    account or record-number rule (each needs a label such as ``acct #``) and
    six or more characters without a dot -- ``acct #A99812`` is an account,
    though ``A99812`` could be an undotted ICD-10-CM code.  Five-character
    tokens (``J1030``, ``99213``) stay codes."""
    token = token.strip()
    return kind in ("ACCOUNT", "MRN") and len(token) >= 6 and "." not in token


def _name_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Trim a candidate name to its leading run of real name words."""
    words = list(re.finditer(r"[A-Za-z][A-Za-z'’.-]*", text[start:end]))
    kept_end = None
    for w in words:
        word = w.group().rstrip(".").lower().replace("’", "'").removesuffix("'s")
        if not w.group()[0].isupper() or (len(word) > 1 and word in _NOT_NAMES):
            break
        kept_end = start + w.end()
    if kept_end is None:
        return None
    return start, kept_end


_LOWER_CUED = re.compile(r"\b(?:patient|pt|name|member|for|re)\b\s*[:,=-]?\s*([a-z]+)\s+((?:[a-z]\.?\s+)?[a-z][a-z'’-]+)", re.I)


# "mrs. garcia", "mr lopez": an honorific makes the next word a surname even in lower case.
_LOWER_HONORIFIC = re.compile(r"\b(?:mr|mrs|ms|mx|miss)\.?[ \t]+([a-z][a-z'’-]{1,})\b")
_NAME_LABEL = re.compile(r"\b(?:patient|pt)?\s*name\s*(?:is|was)?\s*[:=-]?\s*([a-z][a-z'’-]+)\s+([a-z][a-z'’-]+)", re.I)
_SURNAME_FIRST = re.compile(rf"(?m)^[ \t]*({_LAST_FIRST})(?=\s*[(/:–—-]|\s+(?:DOB|MRN|acct|age)\b)")


def _plain(word: str) -> str:
    return word.lower().replace("’", "'").strip("'")


def _lowercase_names(text: str) -> list[Span]:
    """Names typed without capitals or in ``Surname, Given`` order:

    - ``pt john smith``: after a cue, a common given name and a word that is
      not a known non-name;
    - ``name eleanor nguyen``: after an explicit name label, any two words
      that are not known non-names;
    - ``Okafor, Siobhan (acct ...)``: a ``Surname, Given`` pair opening a line
      and followed by an identifier or a separator."""
    spans = []
    for m in _LOWER_CUED.finditer(text):
        first, last = m.group(1), m.group(2).split()[-1]
        if first.islower() and first in _FIRST_NAMES and _plain(last) not in _NOT_NAMES \
                and _plain(last) not in _NOT_NAME_PAIRS:
            spans.append(Span(m.start(1), m.end(2), "NAME"))
    for m in _LOWER_HONORIFIC.finditer(text):
        word = _plain(m.group(1))
        if word not in _NOT_NAMES and word not in _NOT_NAME_PAIRS:
            spans.append(Span(m.start(1), m.end(1), "NAME"))
    for m in _NAME_LABEL.finditer(text):
        words = [_plain(m.group(1)), _plain(m.group(2))]
        if not any(w in _NOT_NAMES or w in _NOT_NAME_PAIRS for w in words):
            spans.append(Span(m.start(1), m.end(2), "NAME"))
    for m in _SURNAME_FIRST.finditer(text):
        words = [_plain(w) for w in re.findall(r"[A-Za-z'’-]{2,}", m.group(1))]
        if not any(w in _NOT_NAMES or w in _NOT_NAME_PAIRS for w in words):
            spans.append(Span(m.start(1), m.end(1), "NAME"))
    return spans


def _repeated_names(text: str, names: list[Span]) -> list[Span]:
    """Every other occurrence of a name word already found, and cue-less
    ``First Last`` pairs starting with a common given name."""
    extra: list[Span] = []
    tokens = {w for s in names for w in re.findall(r"[A-Z][a-z'’-]{2,}", text[s.start:s.end])}
    tokens = {t for t in tokens if t.lower() not in _NOT_NAMES}
    if tokens:
        pattern = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, tokens), key=len, reverse=True)) + r")\b")
        extra.extend(Span(m.start(), m.end(), "NAME") for m in pattern.finditer(text))
    for m in _PAIR.finditer(text):
        words = [w.lower().replace("’", "'").removesuffix("'s") for w in re.findall(r"[A-Za-z'’-]{2,}", m.group())]
        if any(w in _NOT_NAMES or w in _NOT_NAME_PAIRS for w in words):
            continue
        # Two or three capitalised words in a row are a proper name; a common
        # given name or a middle initial makes it a person for certain.
        # At the start of a sentence a capitalised pair is still a name unless
        # it reads like a heading ("Coding Question:").
        line_start = not text[:m.start()].rstrip(" \t") or text[:m.start()].rstrip(" \t")[-1] == "\n"
        heading = line_start and text[m.end():m.end() + 1] == ":"
        if words[0] in _FIRST_NAMES or m.group(2) or not heading:
            extra.append(Span(m.start(), m.end(), "NAME"))
    return extra


def _sentence_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \t")
    return not before or before[-1] in ".!?:;\n-–—>\"'(/"


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans become one; the kind of the longest wins."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            longer = last if (last.end - last.start) >= (span.end - span.start) else span
            merged[-1] = Span(last.start, max(last.end, span.end), longer.kind)
        else:
            merged.append(span)
    return merged


def _apply(text: str, spans: list[Span]) -> str:
    out, pos = [], 0
    for span in spans:
        out.append(text[pos:span.start])
        out.append(f"[{span.kind}]")
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def _first_date(text: str, spans: list[tuple[int, int]]) -> date | None:
    for start, end in spans:
        parsed = parse_date(text[start:end])
        if parsed:
            return parsed
    return None


def parse_date(value: str) -> date | None:
    """Parse the date forms :data:`DATE` matches (US month-first for slashes)."""
    value = value.strip().lower().replace(",", " ")
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", value):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{2,4})", value):
            year = int(m[3])
            if year < 100:
                year += 2000 if year < 50 else 1900
            return date(year, int(m[1]), int(m[2]))
        if m := re.fullmatch(r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?\s+(\d{4})", value):
            return date(int(m[3]), _MONTH_NUM[m[1][:3]], int(m[2]))
        if m := re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?\s+(\d{4})", value):
            return date(int(m[3]), _MONTH_NUM[m[2][:3]], int(m[1]))
    except (ValueError, KeyError):
        return None
    return None


def find_date_of_service(text: str) -> date | None:
    """The first date labelled DOS / date of service, if any."""
    return _first_date(text, [(m.start(1), m.end(1)) for m in _DOS.finditer(text)])
