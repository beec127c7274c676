"""What a query says beyond its topic: shorthand, side, encounter, negation.

:func:`read` rewrites the shorthand coders type into the words the code
sets use ("lt distal radius fx init closed" -> "left distal radius fracture
initial encounter closed") and notes the qualifiers the ranking must honour:
the side (left / right / bilateral -> the laterality digit), the encounter
(initial / subsequent / sequela -> the 7th character), negation ("without",
"w/o", "no", "not", "non-") and whether "with" was said.

Everything here is a table: add a row, not a branch.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# Written forms with punctuation, replaced before the text is split into words.
PUNCTUATED = [
    (r"\bw/o\b", " without "), (r"\bw/\s*", " with "), (r"\bb/l\b", " bilateral "), (r"\bd/o\b", " disorder "),
    (r"\bh/o\b", " history of "), (r"\bs/p\b", " status post "), (r"\bn/v\b", " nausea vomiting "),
    (r"\bc/o\b", " complaint of "), (r"\bf/u\b", " follow up "), (r"\bx-?ray\b", " radiograph "),
]
# ICD-9-CM's phrasing -> ICD-10-CM's, for the same meaning (titles and notes written to the older
# conventions, as coders still copy them): "without mention of X" is "without X"; ", so stated" adds
# nothing; a site left unspecified is the unspecified code ("site" is not a word to match, nor is
# "overlapping sites"); "most recent episode (or current)" is the current episode; ICD-9-CM's
# "<organism> infection in conditions classified elsewhere and of unspecified site" (041, 079) is
# ICD-10-CM's "<organism> as the cause of diseases classified elsewhere" (B95-B97).
CONVENTIONS = [
    (r"\binfection in conditions classified elsewhere and of unspecified site\b",
     " as the cause of diseases classified elsewhere "),
    (r"\bwithout mention of\b", " without "), (r",?\s*so stated\b", " "),
    (r"\b(?:of\s+)?unspecified sites?\b|\bsites? unspecified\b", " unspecified "),
    (r"\bmost recent episode \(?or current\)?", " current episode "),
]
# Single shorthand words -> the code sets' words (coding practice; the
# medical abbreviation table in synonyms adds clinical terms on top).
SHORTHAND = {
    "lt": "left", "l": "left", "rt": "right", "r": "right", "bilat": "bilateral", "bil": "bilateral",
    "bl": "bilateral", "both": "bilateral", "wo": "without", "w": "with", "fx": "fracture", "fxs": "fracture",
    "init": "initial encounter", "initial": "initial encounter", "inital": "initial encounter",
    "subs": "subsequent encounter", "subseq": "subsequent encounter", "subsq": "subsequent encounter",
    "subsequent": "subsequent encounter", "seq": "sequela", "sequelae": "sequela", "enc": "encounter",
    "unsp": "unspecified", "unspec": "unspecified", "nos": "unspecified", "abd": "abdominal",
    "hx": "history", "dx": "", "disp": "displaced", "nondisp": "nondisplaced", "nec": "other",
    "lle": "left lower limb", "rle": "right lower limb", "lue": "left upper limb", "rue": "right upper limb",
    "ext": "external", "sx": "symptoms", "dz": "disease", "inj": "injury",
}
SIDES = {"left": "left", "right": "right", "bilateral": "bilateral"}
ENCOUNTERS = ("initial", "subsequent", "sequela")
NEGATIONS = {"without", "no", "not", "absent", "negative", "denies", "never"}
# Roman numerals as ICD-9-CM (and people) write stages, grades and types; ICD-10-CM writes digits
# ("Stage 3 necrotizing enterocolitis", "grade 4") but keeps some ("Salter-Harris Type III"): search
# tries both, only after these words ("iv" alone is intravenous, "i" a pronoun).
ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9",
         "x": "10", "xi": "11", "xii": "12"}
NUMBERED = {"stage", "grade", "type", "class", "degree", "phase", "level", "nerve", "factor", "trisomy"}
# small words between a negation and what it negates ("not due to X", "without mention of X")
_LINKS = {"due", "to", "of", "a", "an", "the", "any", "mention"}
# "non displaced", "non-traumatic", "un complicated": joined when the code sets know the joined word
JOINABLE = ("non", "un")


@dataclass
class Qualifiers:
    text: str                                   # the query rewritten into code-set words
    sides: set[str] = field(default_factory=set)
    encounter: set[str] = field(default_factory=set)
    negated: bool = False
    with_: bool = False
    words_after_negation: set[str] = field(default_factory=set)
    positive_text: str = ""  # the text without the negated words: what the codes must be about
    negated_heads: set[str] = field(default_factory=set)  # the first word each negation applies to
    with_text: str = ""      # the words a "with" asks for ("with obstruction"), up to the next qualifier


def fold(text: str) -> str:
    """Accents folded, possessives stripped, lower case: "Ménière's" -> "meniere"."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("\u2019", "'").lower()
    return re.sub(r"(\w)'s\b", r"\1", text).replace("'", "")


def read(text: str, known=lambda w: True) -> Qualifiers:
    """Rewrite ``text`` and collect its qualifiers; ``known(word)`` says whether the code sets use a word."""
    text = fold(text)
    for pattern, repl in CONVENTIONS + PUNCTUATED:
        text = re.sub(pattern, repl, text)
    raw = re.split(r"[^a-z0-9]+", text)
    out: list[str] = []
    i = 0
    while i < len(raw):
        w = raw[i]
        i += 1
        if not w:
            continue
        if w in JOINABLE and i < len(raw) and raw[i] and known(w + raw[i]):
            out.append(w + raw[i])
            i += 1
            continue
        out.append(SHORTHAND.get(w, w) if not (w in ("l", "r", "w") and _is_code_context(raw, i)) else w)
    rewritten = " ".join(x for x in " ".join(out).split())
    q = Qualifiers(rewritten)
    ws = rewritten.split()
    positive: list[str] = []
    scope = 0  # words still inside a negation ("without status asthmaticus")
    with_words: list[str] = []
    with_scope = 0
    for j, w in enumerate(ws):
        if w in NEGATIONS or w in SIDES or w in ENCOUNTERS or w == "and":
            with_scope = 0
        elif w == "with":
            with_scope = 2
        elif with_scope:
            with_words.append(w)
            with_scope -= 1
        if w in NEGATIONS:
            scope = 3
        elif w == "due" and j and ws[j - 1] in NEGATIONS:
            continue  # "not due to X": the cause is negated
        elif w in ("with", "and", "due") or w in SIDES or w in ENCOUNTERS:
            scope = 0
        elif scope:
            scope -= 1
            continue
        positive.append(w)
    q.positive_text = " ".join(positive)
    q.with_text = " ".join(with_words)
    for j, w in enumerate(ws):
        if w in SIDES:
            q.sides.add(SIDES[w])
        if w in ENCOUNTERS:
            q.encounter.add(w)
        if w in NEGATIONS:
            head = next((x for x in ws[j + 1 : j + 4] if x not in _LINKS), None)
            if head and head not in NEGATIONS and head not in SIDES and head not in ENCOUNTERS:
                q.negated_heads.add(head)
                # "without obstruction or gangrene": both are negated
                q.negated_heads.update(ws[k + 1] for k in range(j + 1, min(j + 5, len(ws) - 1)) if ws[k] == "or")
            q.negated = True
            q.words_after_negation.update(x for x in ws[j + 1 : j + 4] if x not in SIDES and x not in ENCOUNTERS)
        if w == "with":
            q.with_ = True
    for w in ws:
        if w.startswith("non") and len(w) > 5:
            q.words_after_negation.add(w[3:])
    return q


def _is_code_context(raw: list[str], i: int) -> bool:
    # "type r" or a single letter between digits is not a side
    prev = raw[i - 2] if i >= 2 else ""
    return prev.isdigit() or prev == "type"


def title_sides(title_words: set[str]) -> set[str]:
    return {SIDES[w] for w in title_words if w in SIDES}
