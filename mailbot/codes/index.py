"""The in-process search index over the imported code sets.

Built once per database, cached, and rebuilt when a new code-set version
is imported (the cache key includes the
version rows' ids).  Ranking is one Python implementation, so SQLite and
PostgreSQL give the same answers.

Each document is a code: its title, inclusion terms and Includes notes,
Alphabetic Index / drug / neoplasm table paths (when imported) and (HCPCS)
short descriptor, tokenised and lightly stemmed.  Every code that has any
row is indexed once, with its latest title; which codes are valid on a date
of service is decided at query time from the rows' validity intervals.  A token's postings
are a pair of numpy arrays (document ids, BM25-style weights); a query is
scored by adding, per query concept, the best of its alternative phrasings.

Beside the postings, the index keeps the classification's own defaults: each
"... NOS" inclusion term and each Excludes note that sends a phrase to a code
("dyspepsia NOS (R10.13)"), keyed by the phrase's tokens, for search to favour
the code a query that says just that phrase takes.
"""

from __future__ import annotations

import gc
import json
import math
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import numpy as np
from sqlalchemy import Text, cast, func, select
from sqlmodel import Session

from mailbot.codes.synonyms import STOPWORDS
from mailbot.models.code_index import IndexTerm
from mailbot.models.codes import CodeEntry, CodeSetVersion

_OPEN = date(9999, 12, 31).toordinal()
FIELD_WEIGHTS = {"title": 1.0, "index": 0.7, "inclusion": 0.65, "short": 0.45}
K1, B = 1.2, 0.5
_SPLIT = re.compile(r"[^a-z0-9]+")
_POSSESSIVE = re.compile(r"(?<=\w)'s\b")
_BRACKETED = re.compile(r"\[([^\]]+)\]")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A deliberately light stemmer: plurals and a few verb endings."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("xes", "x")):
        if word.endswith(suffix):
            return word[: -len(suffix)] + repl
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4 and not word.endswith("eed"):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "ys")):
        word = word[:-1]
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]  # fracture / fractured / fractures -> fractur
    return word


# "without X" up to the next preposition: what a title says is absent ("Puncture wound without foreign
# body of right little finger without damage to nail" -> "foreign body", "damage")
_ABSENT = re.compile(r"\bwithout\b(.*?)(?=\b(?:of|with|in|to|due|at|for|from|on|by)\b|$)", re.IGNORECASE)
ABSENT_LENGTH_SHARE = 1.0  # how much of an absent clause's length a title's length keeps out


# How an etiology code (B95-B97) is used, repeated in each of its titles: not what the code is about.
USAGE_PHRASE = "as the cause of diseases classified elsewhere"


def absent_clauses(title: str) -> list[str]:
    """The texts a title says are absent, each without its "without"."""
    return [m.group(1) for m in _ABSENT.finditer(title)]


def without_absent(title: str) -> str:
    """The title with its absent clauses reduced to the bare word "without"."""
    return _ABSENT.sub("without ", title)


def words(text: str) -> list[str]:
    """Lower-case words of ``text``: accents folded, possessives stripped ("Ménière's" -> "meniere")."""
    text = text.lower()
    if not text.isascii():
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
        text = text.replace("\u2019", "'")
    if "'" in text:
        text = _POSSESSIVE.sub("", text).replace("'", "")
    return [w for w in _SPLIT.split(text) if w]


# Words whose type a single letter names: "hepatitis C", "vitamin A", "influenza B", "hemophilia A",
# "group B streptococcus".  The letter is kept, joined to the word (a token such as "hepatitis_c"), so
# "hepatitis a" is not read as "hepatitis" and a stop word.  ("type" and "factor" number with Roman
# numerals instead: qualifiers.NUMBERED.)
LETTER_TYPED = frozenset({"hepatitis", "vitamin", "influenza", "hemophilia", "group", "strep", "streptococcus",
                          "streptococcal"})


def typed_letter(previous: str, word: str) -> str | None:
    """The joined token of a type letter (``"hepatitis", "c"`` -> ``"hepatitis_c"``), else ``None``."""
    if len(word) == 1 and word.isalpha() and previous in LETTER_TYPED:
        return f"{previous}_{word}"
    return None


def tokens(text: str) -> list[str]:
    ws = words(text)
    out = [stem(w) for w in ws if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    for j in range(1, len(ws)):
        if len(ws[j]) == 1 and (typed := typed_letter(ws[j - 1], ws[j])):
            out.append(typed)
    return out


USAGE_TOKENS = set(tokens(USAGE_PHRASE))
NEC_PHRASE = "not elsewhere classified"  # the residual code's marker, no more about its topic than "unspecified"
NEC_TOKENS = set(tokens(NEC_PHRASE))


# "Seizure(s) (convulsive) NOS", "Parkinsonism, NOS": an inclusion term that says NOS (not otherwise
# specified) names the code a condition takes when nothing more is documented -- the coding default.
# An Excludes note points the same way from elsewhere: "dyspepsia NOS (R10.13)", "tonsillitis NOS (J03.9-)".
_NOS = re.compile(r"\bNOS\b")
_POINTER = re.compile(r"\(([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{0,4})?)\.?-?\)\s*$")
_OPTIONAL = re.compile(r"\(([^()]*)\)|\[([^\]]*)\]")


def default_phrase(text: str) -> tuple[frozenset, frozenset] | None:
    """(the tokens a NOS term requires, the tokens it allows besides) or ``None`` for no NOS term."""
    return _phrase(text) if _NOS.search(text) else None


def _phrase(text: str) -> tuple[frozenset, frozenset] | None:
    """(required tokens, optional tokens) of a phrase that names a code's default.

    Words in parentheses are nonessential modifiers and bracketed words other names: a query may
    say them or not ("seizures", "convulsive seizures")."""
    text = _POINTER.sub("", text).replace("(s)", "")
    optional = frozenset(tokens(" ".join(a or b for a, b in _OPTIONAL.findall(text))))
    required = frozenset(tokens(_NOS.sub(" ", _OPTIONAL.sub(" ", text)))) - {"nos"}
    return (required, optional - required) if required else None


def _add_default(defaults: dict, phrase: tuple[frozenset, frozenset] | None, code: str) -> None:
    if phrase:
        required, optional = phrase
        entry = (optional, code.replace(".", ""))
        known = defaults.setdefault(required, [])
        if entry not in known:
            known.append(entry)


def _pointers(notes: dict) -> list[tuple[str, str]]:
    """(phrase, code) of each Excludes note that sends one phrase to one code: "dyspepsia NOS (R10.13)",
    "Lyme disease (A69.2-)".  Not the items under a lead line ("meningitis (in):", then "Lyme disease
    (A69.21)": the phrase is only part of what is meant), nor pointers into the pregnancy and newborn
    chapters, whose phrases lean on the chapter for "pregnancy" or "newborn" ("conjoined twins (O30.02-)")."""
    out = []
    for kind in ("excludes1", "excludes2"):
        for note in notes.get(kind, ()):
            if note.rstrip().endswith(":"):
                break
            pointer = _POINTER.search(note)
            if pointer and pointer.group(1)[0] not in "OP":
                out.append((_POINTER.sub("", note), pointer.group(1)))
    return out


@lru_cache(maxsize=50_000)
def cached_tokens(text: str) -> tuple[str, ...]:
    return tuple(tokens(text))


@dataclass
class Postings:
    ids: np.ndarray
    weights: np.ndarray
    scored: np.ndarray | None = None  # weights * the token's idf, computed once at build


class Speller:
    """Finds vocabulary words within a normalised edit distance of an unknown word, fast.

    Comparing a typo with every vocabulary word costs milliseconds per word;
    instead the candidates are the words of a possible length that share
    enough letter pairs (bigrams, the word padded with ``^`` and ``$``) with
    it.  One edit (a substitution, insertion, deletion or swapped pair)
    removes at most three of the typed word's bigrams, so a word within
    ``k`` edits shares at least ``len(bigrams) - 3k`` of them: the filter
    never drops a word the full comparison would keep."""

    def __init__(self, vocab: list[str]):
        self.vocab = vocab
        self.lengths = np.array([len(w) for w in vocab], dtype=np.int16)
        grams: dict[str, list[int]] = {}
        for i, word in enumerate(vocab):
            for gram in self.bigrams(word):
                grams.setdefault(gram, []).append(i)
        self.grams = {g: np.array(ids, dtype=np.int32) for g, ids in grams.items()}

    @staticmethod
    def bigrams(word: str) -> set[str]:
        padded = f"^{word}$"
        return {padded[i : i + 2] for i in range(len(padded) - 1)}

    def candidates(self, word: str, cutoff: float) -> list[str]:
        """Vocabulary words (in vocabulary order) that may reach ``cutoff`` normalised similarity."""
        n = len(word)
        longest = math.floor(n / cutoff + 1e-9)   # 1 - d / len(other) >= cutoff, d >= len(other) - n
        shortest = math.ceil(n * cutoff - 1e-9)
        max_edits = math.floor((1 - cutoff) * longest + 1e-9)
        grams = self.bigrams(word)
        need = len(grams) - 3 * max_edits
        in_window = (self.lengths >= shortest) & (self.lengths <= longest)
        if need <= 0:
            ids = np.flatnonzero(in_window)
        else:
            lists = [self.grams[g] for g in grams if g in self.grams]
            if not lists:
                return []
            shared = np.bincount(np.concatenate(lists), minlength=len(self.vocab))
            ids = np.flatnonzero((shared >= need) & in_window)
        return [self.vocab[i] for i in ids.tolist()]


@dataclass
class CodeIndex:
    codes: list[str]
    systems: list[str]
    titles: list[str]
    billable: np.ndarray
    stems: list[str]  # 7th-character codes: the code without its 7th character, else ""
    system_ids: dict[str, np.ndarray]
    postings: dict[str, Postings]
    idf: dict[str, float]
    vocab: list[str]  # sorted, for prefix and typo matching
    meanings: list[str] = field(default_factory=list)  # 7th-character meaning, lower case, else ""
    # one entry per code_entry row: which document, valid from / to (date ordinals), billable then
    iv_doc: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    iv_from: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    iv_to: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    iv_billable: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _on_cache: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)  # search's per-document memo (title words, sides)
    by_code: dict[str, int] = field(default_factory=dict)
    undotted: list[str] = field(default_factory=list)
    speller: Speller | None = None
    resolved: dict = field(default_factory=dict)  # search's memo: query token -> vocabulary tokens
    phrases: dict = field(default_factory=dict)  # search's memo: do one code's words hold all these stems
    sorted_undotted: list[tuple[str, int]] = field(default_factory=list)
    # ICD-10-CM coding defaults: the tokens a "... NOS" term requires -> [(tokens it also allows, the
    # undotted code it names, covering the codes under it)]
    defaults: dict[frozenset, list[tuple[frozenset, str]]] = field(default_factory=dict)
    default_tokens: frozenset = frozenset()  # every token some default phrase requires or allows

    @property
    def size(self) -> int:
        return len(self.codes)

    def valid_on(self, on: date) -> tuple[np.ndarray, np.ndarray]:
        """(valid, billable) boolean arrays over the documents for a date of service."""
        key = on.toordinal()
        cached = self._on_cache.get(key)
        if cached is None:
            live = (self.iv_from <= key) & (self.iv_to >= key)
            valid = np.zeros(self.size, dtype=bool)
            valid[self.iv_doc[live]] = True
            billable = np.zeros(self.size, dtype=bool)
            billable[self.iv_doc[live & self.iv_billable]] = True
            if len(self._on_cache) > 32:
                self._on_cache.clear()
            cached = self._on_cache[key] = (valid, billable)
        return cached

    def with_prefix(self, prefix: str) -> list[int]:
        """Document ids whose undotted code starts with ``prefix`` (upper case)."""
        import bisect

        start = bisect.bisect_left(self.sorted_undotted, (prefix, -1))
        out = []
        for key, doc in self.sorted_undotted[start:]:
            if not key.startswith(prefix):
                break
            out.append(doc)
        return out


def build(session: Session) -> CodeIndex:
    """Index every code (not modifiers) that has any row, with its latest title.

    Which codes are valid on a date is decided at query time
    (:meth:`CodeIndex.valid_on`) from every row's validity interval, so one
    index serves any date of service once history rows exist."""
    all_rows = session.execute(
        select(CodeEntry.system, CodeEntry.code, CodeEntry.title, CodeEntry.short_title, CodeEntry.billable,
               cast(CodeEntry.notes, Text), CodeEntry.valid_from, CodeEntry.valid_to)
        .where(CodeEntry.system.in_(("icd10cm", "hcpcs", "cpt")))
        .order_by(CodeEntry.system, CodeEntry.code, CodeEntry.valid_from)
    ).all()
    rows = []
    intervals: list[tuple[int, int, int, bool]] = []  # doc, from, to (ordinals, inclusive), billable
    for row in all_rows:
        if not rows or rows[-1][:2] != row[:2]:
            rows.append(row)
        else:
            rows[-1] = row  # the latest row gives the title
        intervals.append((len(rows) - 1, row[6].toordinal(), row[7].toordinal() if row[7] else _OPEN, bool(row[4])))
    rows = [r[:6] for r in rows]
    index_text, dashed = _index_terms(session)
    # "Varicella [chickenpox]", "Herpesviral [herpes simplex] infections": a title's bracketed words name
    # its subject another way, and every code under it inherits them (B01.9 "Varicella without
    # complication" is chickenpox too; B00.51 "Herpesviral iridocyclitis" is herpes simplex)
    bracketed = {code.replace(".", ""): _BRACKETED.findall(title)
                 for system, code, title, *_ in rows if system == "icd10cm" and "[" in title}
    codes, systems, titles, stems, billable, meanings = [], [], [], [], [], []
    defaults: dict[frozenset, list[tuple[frozenset, str]]] = {}
    token_ids: dict[str, int] = {}
    post_tok: list[int] = []  # parallel lists: token id, document id, field weight
    post_doc: list[int] = []
    post_w: list[float] = []
    lengths = []
    for doc, (system, code, title, short, is_billable, notes_text) in enumerate(rows):
        # decode the JSON only when it holds something the index uses (most rows do not)
        notes = json.loads(notes_text) if notes_text and ('"inclusion_terms"' in notes_text or
                                                         '"includes"' in notes_text or
                                                         '"seventh_character"' in notes_text or
                                                         '"excludes' in notes_text) else {}
        if system == "icd10cm" and notes:
            if " NOS" in notes_text:
                for term in notes.get("inclusion_terms", []) + notes.get("includes", []):
                    _add_default(defaults, default_phrase(term), code)
            for phrase, pointed in _pointers(notes):
                _add_default(defaults, _phrase(phrase), pointed)
        codes.append(code)
        systems.append(system)
        titles.append(title)
        billable.append(bool(is_billable))
        seventh = notes.get("seventh_character")
        stems.append(code[:-1] if seventh else "")
        meanings.append(seventh["meaning"].lower() if seventh else "")
        if seventh and title.endswith(", " + seventh["meaning"]):
            # "<stem title>, <7th character meaning>": both parts repeat thousands of times
            title_tokens = cached_tokens(title[: -len(seventh["meaning"]) - 2]) + cached_tokens(seventh["meaning"])
        else:
            title_tokens = tokens(title)
        seen = dict.fromkeys(title_tokens, FIELD_WEIGHTS["title"])
        # what a title says is absent ("..., without behavioral disturbance, psychotic disturbance, mood
        # disturbance, and anxiety") does not make the code less about its topic: not counted in its length
        # (diagnoses only: in a supply descriptor "without barrier attached" is the product, not a default)
        absent = (len(set(tokens(" ".join(absent_clauses(title))))) if system == "icd10cm" and " without " in title
                  else 0)
        if system == "icd10cm" and USAGE_PHRASE in title:
            absent += len(USAGE_TOKENS)  # "X as the cause of diseases classified elsewhere" is about X
        if system == "icd10cm" and title.endswith(NEC_PHRASE):
            absent += len(NEC_TOKENS)  # "Pleural effusion, not elsewhere classified" is about pleural effusion
        lengths.append(max(1, len(seen) - ABSENT_LENGTH_SHARE * absent))
        extra = [(short, FIELD_WEIGHTS["short"]),
                 (" ".join(notes.get("inclusion_terms", []) + notes.get("includes", [])), FIELD_WEIGHTS["inclusion"])]
        if system == "icd10cm" and bracketed:
            key = code.replace(".", "")
            inherited = [term for n in range(3, len(key)) for term in bracketed.get(key[:n], ())]
            if inherited:
                extra.append((" ".join(inherited), FIELD_WEIGHTS["inclusion"]))
        if system == "icd10cm" and (index_text or dashed):
            extra.append((" ".join(_terms_for(code, index_text, dashed)), FIELD_WEIGHTS["index"]))
        for text, weight in extra:
            if text:
                for token in tokens(text):
                    if seen.get(token, 0.0) < weight:
                        seen[token] = weight
        for token, weight in seen.items():
            tid = token_ids.get(token)
            if tid is None:
                tid = token_ids[token] = len(token_ids)
            post_tok.append(tid)
            post_doc.append(doc)
            post_w.append(weight)
    n = len(codes)
    avg = (sum(lengths) / n) if n else 1.0
    lengths_arr = np.array(lengths, dtype=np.float32)
    norm = ((K1 + 1) / (1 + K1 * (1 - B + B * lengths_arr / avg))).astype(np.float32)
    tok = np.array(post_tok, dtype=np.int32)
    docs = np.array(post_doc, dtype=np.int32)
    weights = np.array(post_w, dtype=np.float32) * (norm[docs] if n else 1.0)
    order = np.argsort(tok, kind="stable")  # stable: document ids stay ascending per token
    tok, docs, weights = tok[order], docs[order], weights[order]
    bounds = np.searchsorted(tok, np.arange(len(token_ids) + 1))
    postings, idf = {}, {}
    for token, tid in token_ids.items():
        lo, hi = int(bounds[tid]), int(bounds[tid + 1])
        idf[token] = math.log(1 + (n - (hi - lo) + 0.5) / ((hi - lo) + 0.5))
        postings[token] = Postings(docs[lo:hi], weights[lo:hi], weights[lo:hi] * np.float32(idf[token]))
    system_ids = {s: np.array([i for i, x in enumerate(systems) if x == s], dtype=np.int32) for s in set(systems)}
    iv = np.array(intervals, dtype=np.int64).reshape(-1, 4)
    vocab = sorted(postings)
    return CodeIndex(codes=codes, systems=systems, titles=titles, billable=np.array(billable, dtype=bool),
                     stems=stems, meanings=meanings, iv_doc=iv[:, 0].astype(np.int32), iv_from=iv[:, 1],
                     iv_to=iv[:, 2], iv_billable=iv[:, 3].astype(bool), system_ids=system_ids, postings=postings,
                     idf=idf, vocab=vocab, speller=Speller(vocab),
                     by_code={c: i for i, c in enumerate(codes)}, undotted=[c.replace(".", "") for c in codes],
                     sorted_undotted=sorted((c.replace(".", ""), i) for i, c in enumerate(codes)),
                     defaults=defaults,
                     default_tokens=frozenset().union(*defaults, *(o for v in defaults.values() for o, _ in v)))


def _index_terms(session: Session) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Alphabetic Index / drug / neoplasm paths per code (when the operator imported them).

    Returns (exact code -> texts, code stem of a "S52.50-" entry -> texts)."""
    exact: dict[str, list[str]] = {}
    dashed: dict[str, list[str]] = {}
    for path, code, column in session.execute(select(IndexTerm.path, IndexTerm.code, IndexTerm.column)
                                              .where(IndexTerm.code != "")):
        text = f"{path} {column}" if column else path
        if code.endswith("-"):
            dashed.setdefault(code.rstrip("-").rstrip("."), []).append(text)
        else:
            exact.setdefault(code, []).append(text)
    return exact, dashed


def _terms_for(code: str, exact: dict[str, list[str]], dashed: dict[str, list[str]]) -> list[str]:
    texts = list(exact.get(code, ()))
    if dashed:
        for n in range(3, len(code) + 1):  # every ancestor written with a dash ("S52.5-" covers S52.501A)
            texts += dashed.get(code[:n].rstrip("."), ())
    return texts[:20]


_cache: dict[str, tuple[tuple, CodeIndex]] = {}
_checked: dict[str, float] = {}
_lock = threading.Lock()


def generation(session: Session) -> tuple:
    """Changes whenever code-set versions are imported or replaced."""
    row = session.execute(select(func.count(CodeSetVersion.id), func.max(CodeSetVersion.id),
                                 func.sum(CodeSetVersion.row_count))).one()
    return tuple(row)


GENERATION_TTL = 2.0  # seconds between checks that the code sets did not change


def get_index(session: Session) -> CodeIndex:
    """The cached index for this session's database, rebuilt if the code sets changed.

    Whether they changed is asked of the database at most every
    ``GENERATION_TTL`` seconds (an import in this process invalidates at once)."""
    key = str(session.get_bind().url)
    cached = _cache.get(key)
    now = time.monotonic()
    if cached and now - _checked.get(key, 0.0) < GENERATION_TTL:
        return cached[1]
    gen = generation(session)
    _checked[key] = now
    if cached and cached[0] == gen:
        return cached[1]
    with _lock:
        cached = _cache.get(key)
        if cached and cached[0] == gen:
            return cached[1]
        index = build(session)
        _cache[key] = (gen, index)
        # the index is a few hundred thousand long-lived objects: left in the collector's oldest
        # generation, every full collection walks them all (about 0.3 s on this 2-core machine, a pause
        # landing on whichever search runs then); frozen, the collector skips them.  Reference
        # counting still frees an index that a rebuild replaces.
        gc.freeze()
        return index


def invalidate() -> None:
    with _lock:
        _cache.clear()
        _checked.clear()
