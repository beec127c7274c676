"""Search the code sets the way coders and patients write.

``search(session, "sugar diabetes with kidney disease")`` -> ranked
:class:`SearchHit` list.  Handles lay words and abbreviations (the
:mod:`synonyms` table, and the medical compounds :mod:`lay` builds from lay
phrases: "blood in urine" -> hematuria), inclusion terms, typos (rapidfuzz
edit distance against the vocabulary words a bigram filter lets through),
unfinished words (prefixes), any word order, and code prefixes (``E11.``,
``S52.5``, ``J10``), alone or with words (``E11 kidney``).

How a query is scored: the query becomes *concepts* (a word, or a phrase from
the synonym table), each with alternative phrasings; a code's score is the
sum over concepts of the best alternative's BM25-style weight, scaled by the
share of concepts it covers.  Then a small re-rank: one result per
7th-character family (initial encounter first unless the query says
otherwise), billable codes slightly ahead of headers.  Only the documents in
the query words' posting lists are touched, and the re-rank stops once no
later candidate could enter the results (``bench/profile_search.py``).
"""

from __future__ import annotations

import bisect
import heapq
import re
from dataclasses import asdict, dataclass
from datetime import date
from itertools import combinations
from typing import NamedTuple

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from sqlmodel import Session

from mailbot.codes import lay, qualifiers
from mailbot.codes.index import (USAGE_PHRASE, CodeIndex, absent_clauses, cached_tokens, get_index, stem, tokens,
                                 typed_letter, without_absent, words)
from mailbot.codes.normalize import CPT, HCPCS, ICD10CM
from mailbot.codes.synonyms import ABBREVIATIONS, DEFAULT_CATEGORIES, STOPWORDS, SYNONYMS

SYSTEMS = (ICD10CM, HCPCS, CPT)
_CODE_PREFIX = re.compile(r"^(?:[a-z]\d[0-9a-z]?(?:\.[0-9a-z]{0,4})?|[a-v]\d{2,4}|\d{3,4}[0-9ftu]?)$")
_ENCOUNTER_WORDS = {"subsequent", "sequela", "sequelae", "followup", "follow", "healing", "nonunion", "malunion",
                    "open", "later", "aftercare"}
_DEFAULT_MARKERS = ("unspecified", "not specified", "essential (primary)", "without complications")
# Chapters that apply only to a kind of patient: pregnancy (O) and newborns (P).
_CONTEXT_CHAPTERS = {
    "O": {"pregnancy", "pregnant", "delivery", "labor", "labour", "postpartum", "puerperium", "trimester",
          "gestational", "maternal", "obstetric", "abortion", "miscarriage", "ectopic", "eclampsia", "weeks"},
    "P": {"newborn", "neonatal", "neonate", "perinatal", "baby", "infant", "fetus", "fetal", "birth", "preterm"},
}
_HISTORY_WORDS = {"history", "hx", "h/o", "past", "previous", "former", "old"}
# title words that add no detail beyond what a plain query means
_NEUTRAL = {"unspecified", "nos", "site", "organism", "type", "encounter", "initial", "disease", "disorder",
            "condition", "acute", "primary", "essential", "elsewhere", "classified", "not", "specified", "other"}
_UNASKED = 0.98
_NEGATIVE_TITLE = {"without", "no", "not", "uncomplicated"}
# Title words that name a kind the query must ask for: a neoplasm is coded primary malignant unless
# documented as secondary or in situ (ICD-10-CM guidelines I.C.2; the Neoplasm Table's first column).
# A title that says "congenital" or "acquired" names an origin the documentation must state: a
# condition not so described is not the congenital anomaly ("diverticulitis of colon" is K57.-, not
# Q43.8's "congenital diverticulitis, colon"), and where both kinds exist both wait equally.
_MUST_ASK = {"secondary": {"secondary", "metastatic", "metastasis", "metastases", "mets", "spread"},
             "situ": {"situ", "insitu", "cis"},
             "congenital": {"congenital", "birth", "born", "inborn", "hereditary", "inherited"},
             "acquired": {"acquired"}}
# a title's nonessential modifiers: "Flat foot [pes planus] (acquired)"
_PARENTHESISED = re.compile(r"\([^()]*\)")
# HCPCS ranges CMS reserves for quality-measure reporting (MIPS / PQRS quality data codes)
_MEASURE_RANGES = {"G8", "G9", "M1"}
_MEASURE_WORDS = {"measure", "measures", "quality", "mips", "pqrs", "reporting", "performance", "numerator",
                  "denominator", "exclusion"}
_HEALING = {"routine", "delayed", "nonunion", "malunion", "healing"}
# "..., not intractable, ...", "not due to isoimmunization": what follows a title's "not" up to the next comma
_NOT_CLAUSE = re.compile(r"\bnot ([^,;\[(]*)")
# negated query words too general to say what a title is about ("w/o foreign body other part of neck")
_GENERAL = {"other", "specified", "part", "parts", "site", "sites", "elsewhere", "classified", "not"}


def _stems(ws) -> set[str]:
    return {stem(w) for w in ws}
_MAX_EXPANSIONS = 4
_ASKS_HEADER = {"category", "categories", "header", "headers", "subcategory", "family"}
_QUALIFIED = {"type", "gestational", "secondary", "pregnancy", "neonatal", "induced", "due", "renovascular"}
_SINGLE_WORD_KEYS = [k for k in SYNONYMS if " " not in k and len(k) >= 5]
# a two-word phrase typed as one word ("bedwetting", "nosebleeds" -> "bed wetting", "nose bleeds")
_JOINED_KEYS = {k.replace(" ", ""): k for k in SYNONYMS if k.count(" ") == 1}
_MAX_SYNONYM_WORDS = max(len(k.split()) for k in SYNONYMS)


class SearchError(ValueError):
    """The query cannot be searched (empty, or an unknown system)."""


@dataclass
class SearchHit:
    code: str
    system: str
    title: str
    score: float
    billable: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Alt:
    tokens: list[list[tuple[str, float]]]  # per word: resolved vocabulary tokens with a confidence


def search(session: Session, query: str, system: str | None = None, limit: int = 10,
           on: date | None = None) -> list[SearchHit]:
    """Ranked codes for ``query`` valid on ``on`` (the date of service; today by default).

    Raises :class:`SearchError` for an empty query, a query of only common
    words, control characters only, or an unknown system."""
    if system is not None and system not in SYSTEMS:
        raise SearchError(f"unknown system {system!r}; use one of {', '.join(SYSTEMS)}")
    text = (query or "").strip()
    if not text:
        raise SearchError("empty search: give some words or a code prefix, e.g. 'type 2 diabetes kidney' or 'E11.'")
    limit = max(1, min(int(limit), 200))
    text = _clean(text)
    index = get_index(session)
    valid, billable = index.valid_on(on or date.today())
    parts = [w.strip(",;*") for w in text.lower().split()]  # "E11.*" is a prefix too
    alone = len(parts) == 1
    # short code-like words among other words ("t2 diabetes", "250 mg") are words, not prefixes
    is_prefix = [bool(_CODE_PREFIX.match(w)) and any(ch.isdigit() for ch in w)
                 and (alone or len(_undot(w)) >= (4 if w.isdigit() else 3)) for w in parts]
    # a code-shaped word that starts no code ("b12", "250 mg") is an ordinary word
    is_prefix = [flag and bool(index.with_prefix(_undot(w))) for w, flag in zip(parts, is_prefix)]
    prefixes = [_undot(w) for w, flag in zip(parts, is_prefix) if flag]
    typed = " ".join(w for w, flag in zip(parts, is_prefix) if not flag)
    quals = qualifiers.read(typed, known=lambda w: w in index.postings or stem(w) in index.postings)
    # negated words are not what the code is about: they only steer away from "with ..." titles
    rest = quals.positive_text if quals.positive_text.strip() else quals.text
    raw_words = words(quals.text)
    mask = _mask(index, system, prefixes)
    mask = valid if mask is None else (mask & valid)
    concepts = _concepts(index, rest)
    if not concepts:
        if prefixes:
            return _prefix_listing(index, mask, prefixes, limit, billable)
        if not [w for w in raw_words if w not in STOPWORDS]:
            raise SearchError(f"nothing to search for in {query!r}: no words or code prefixes beyond common words")
        return []  # no word is known to the code sets, even allowing for typos
    scores, covered = _score(index, concepts)
    scores = np.where(mask, scores, 0.0)
    share = covered / len(concepts)
    final = scores * (0.25 + 0.75 * share * share)
    _favour_defaults(index, concepts, final)
    # every vocabulary token the query's concepts reach at full confidence ("blood in urine" -> hematuria)
    asked = {token for alts in concepts for alt in alts for choices in alt.tokens
             for token, confidence in choices if confidence == 1.0}
    return _rerank(index, final, raw_words, limit, quals, bool(prefixes) or bool(_ASKS_HEADER & set(raw_words)),
                   billable, asked)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
MAX_QUERY_WORDS = 40  # a longer text is a question, not a search: its first words are kept


def _clean(text: str) -> str:
    """Control and invisible characters become spaces; very long queries keep their first words."""
    cleaned = " ".join(_CONTROL.sub(" ", text).split())
    if not cleaned:
        raise SearchError("the search holds only control or invisible characters; type some words")
    parts = cleaned.split()
    if len(parts) > MAX_QUERY_WORDS:
        parts = [w for w in parts if w.lower() not in STOPWORDS][:MAX_QUERY_WORDS]
    return " ".join(parts)


def _undot(word: str) -> str:
    return word.rstrip(".").replace(".", "").replace("-", "").upper()


def _mask(index: CodeIndex, system: str | None, prefixes: list[str]) -> np.ndarray | None:
    if system is None and not prefixes:
        return None
    mask = np.zeros(index.size, dtype=bool)
    if system is None:
        mask[:] = True
    elif system in index.system_ids:
        mask[index.system_ids[system]] = True
    if prefixes:
        pmask = np.zeros(index.size, dtype=bool)
        for prefix in prefixes:
            pmask[index.with_prefix(prefix)] = True
        mask &= pmask
    return mask


def _prefix_listing(index: CodeIndex, mask: np.ndarray, prefixes: list[str], limit: int,
                    billable: np.ndarray) -> list[SearchHit]:
    ids = np.flatnonzero(mask)
    # a code prefix asks for the category: shortest (most general) first, then code order
    ordered = sorted(ids.tolist(), key=lambda i: (len(index.undotted[i]), index.codes[i]))[:limit]
    return [SearchHit(index.codes[i], index.systems[i], index.titles[i], 1.0, bool(billable[i]))
            for i in ordered]


def _concepts(index: CodeIndex, text: str) -> list[list[_Alt]]:
    """Split the query into concepts; each concept lists alternative phrasings."""
    ws = list(dict.fromkeys(words(text)))  # a repeated word is one concept

    def known(word: str) -> bool:
        return word in index.postings or stem(word) in index.postings

    def known_phrase(phrase: str) -> bool:
        # every word is the code sets' own, or begins one ("unsteady" -> "unsteadiness"); never a typo fix
        found = tokens(phrase)
        return bool(found) and all(t in index.postings or _begins_a_word(index, t) for t in found)

    def said(phrase_words: list[str]) -> bool:
        return _one_title_holds(index, tuple(stem(w) for w in phrase_words if w not in STOPWORDS))
    concepts: list[list[_Alt]] = []
    i = 0
    while i < len(ws):
        match = None
        # "stage iii", "grade iv" (not "iv" = intravenous): a Roman numeral after a word that numbers things
        numbered = ws[i] in qualifiers.ROMAN and i >= 1 and ws[i - 1] in qualifiers.NUMBERED
        for n in range(0 if numbered else min(_MAX_SYNONYM_WORDS, len(ws) - i), 0, -1):
            phrase = " ".join(ws[i : i + n])
            if phrase in SYNONYMS:
                match = (n, phrase)
                break
        if match is None and not numbered and ws[i] in _JOINED_KEYS and not known(ws[i]):
            match = (1, _JOINED_KEYS[ws[i]])
        compound = None if numbered else lay.compounds(ws, i, known)
        if compound and match and match[0] >= compound[0]:
            compound = None  # the synonym table's phrase is at least as long
        named = None if numbered else lay.lay_term(ws, i, said, known_phrase)
        if named and max(match[0] if match else 0, compound[0] if compound else 0) >= named[0]:
            named = None  # our own tables' phrase is at least as long
        if named:
            # "nose bleeds" -> "epistaxis": the ontology's name for the lay phrase, beside the words, and
            # what our table says for the phrase's first words ("fainting spells": "syncope collapse")
            n, found = named
            alternatives = [" ".join(ws[i : i + n]), *found[:_MAX_EXPANSIONS], *(SYNONYMS[match[1]] if match else ())]
            i += n
        elif match and not compound:
            n, phrase = match
            alternatives = [phrase, *SYNONYMS[phrase]]
            i += n
        elif compound:
            # "blood in urine" -> "hematuria": the medical compound of the lay words, beside the words
            n, found = compound
            alternatives = [" ".join(ws[i : i + n]), *found]
            i += n
        else:
            word = ws[i]
            i += 1
            typed = typed_letter(ws[i - 2], word) if i >= 2 and not numbered else None
            if typed and typed in index.postings:
                # "hepatitis c": the letter names the type; matched as the joined token the titles have
                concepts.append([_Alt([[(typed, 1.0)]])])
                continue
            if not numbered and (word in STOPWORDS or (len(word) == 1 and not word.isdigit())):
                continue
            alternatives = [word]
            if numbered:
                alternatives.append(qualifiers.ROMAN[word])  # "stage iii" is "Stage 3" in ICD-10-CM
            elif word not in index.postings and stem(word) not in index.postings and word in ABBREVIATIONS:
                # a coder's abbreviation the code sets never spell out ("pud", "cabg"): its expansions
                # whose words the code sets use
                expansions = [e for e in ABBREVIATIONS[word]
                              if all(t in index.postings for t in tokens(e))][:_MAX_EXPANSIONS]
                # the expansions replace the typed letters (which would only match as a word prefix)
                alternatives = expansions or alternatives
            elif len(word) >= 5 and stem(word) not in index.postings:
                # a misspelt lay word ("colarbone") still reaches its synonyms
                near = process.extractOne(word, _SINGLE_WORD_KEYS, scorer=fuzz.ratio, score_cutoff=85)
                if near:
                    alternatives += [near[0], *SYNONYMS[near[0]]]
        alts = []
        for alt in alternatives:
            resolved = [_resolve(index, t) for t in tokens(alt)]
            resolved = [r for r in resolved if r]
            if resolved:
                alts.append(_Alt(resolved))
        if alts:
            concepts.append(alts)
    return concepts


# A query that says no more than a "... NOS" term of the code sets ("seizures": "Seizure(s) (convulsive)
# NOS" under R56.9; "heavy periods": "Heavy periods NOS" under N92.0) is that term's code: the
# classification's own default, ahead of the codes whose titles merely repeat the words ("Other seizures").
_NOS_BOOST = 1.7
_NOS_IGNORED = frozenset({"unspecified", "nos", "unspec"})
_MAX_KEYS = 16  # phrasings of the whole query tried against the NOS terms
_MAX_KEY_TOKENS = 6


def _favour_defaults(index: CodeIndex, concepts: list[list[_Alt]], final: np.ndarray) -> None:
    """Raise, in place, the codes of the NOS terms the query says exactly."""
    if not index.defaults:
        return
    keys = [frozenset()]
    for alts in concepts:
        # each phrasing of a concept as the vocabulary tokens it reaches best ("periods" -> "period")
        forms = list(dict.fromkeys(frozenset(choices[0][0] for choices in alt.tokens) for alt in alts))
        keys = [key | form for key in keys for form in forms][:_MAX_KEYS]
    codes: set[str] = set()
    for key in keys:
        key = frozenset(t for t in key if t not in _NOS_IGNORED)
        if not key or len(key) > _MAX_KEY_TOKENS or not key <= index.default_tokens:
            continue  # a word no default phrase has: none can match
        for n in range(len(key), 0, -1):
            for required in map(frozenset, combinations(key, n)):
                for optional, code in index.defaults.get(required, ()):
                    if key - required <= optional:
                        codes.add(code)
    for code in codes:
        if any(other != code and other.startswith(code) for other in codes):
            continue  # "gout NOS (M10.-)" and "Gout NOS" under M10.9: the code that says more, raised once
        ids = np.asarray(index.with_prefix(code), dtype=np.int64)
        if len(ids):
            final[ids] *= _NOS_BOOST


def _begins_a_word(index: CodeIndex, token: str) -> bool:
    start = bisect.bisect_left(index.vocab, token)
    return len(token) >= 5 and start < len(index.vocab) and index.vocab[start].startswith(token)


def _one_title_holds(index: CodeIndex, stems: tuple[str, ...]) -> bool:
    """Whether some code's title has every one of ``stems``, in any of its forms (memoised per index).

    Titles only: an inclusion term that mentions a phrase in passing ("... and low platelet
    count" under HELLP syndrome) is not the code sets' name for it."""
    held = index.phrases.get(stems)
    if held is None:
        forms = [{token for token, confidence in _resolve(index, s) if confidence >= 0.8} for s in stems]
        held = False
        if forms and all(forms):
            docs = [np.unique(np.concatenate([index.postings[t].ids for t in group])) for group in forms]
            docs.sort(key=len)
            common = docs[0]
            for ids in docs[1:]:
                common = np.intersect1d(common, ids, assume_unique=True)
            held = any(all(group & set(cached_tokens(index.titles[i])) for group in forms)
                       for i in common.tolist())
        if len(index.phrases) >= _RESOLVED_CACHE:
            index.phrases.clear()
        index.phrases[stems] = held
    return held


_RARE = 20  # documents: below this a word is rare enough to widen to its stem family


def _same_stem(index: CodeIndex, token: str) -> list[tuple[str, float]]:
    root = token[: max(6, len(token) - 2)]
    start = bisect.bisect_left(index.vocab, root)
    out = [(w, 0.8) for w in index.vocab[start : start + 30]
           if w.startswith(root) and w != token and len(index.postings[w].ids) >= _RARE]
    out.sort(key=lambda p: -len(index.postings[p[0]].ids))
    return out[:3]


_RESOLVED_CACHE = 20_000  # query tokens remembered per index


def _resolve(index: CodeIndex, token: str) -> list[tuple[str, float]]:
    """Vocabulary tokens for a query token: itself, else words it begins, else near spellings.

    Memoised per index: the same word in a later query costs a dictionary look-up."""
    cached = index.resolved.get(token)
    if cached is None:
        cached = _resolve_uncached(index, token)
        if len(index.resolved) >= _RESOLVED_CACHE:
            index.resolved.clear()
        index.resolved[token] = cached
    return cached


# Noun <-> adjective and Latin singular <-> plural endings ("fascia" / "fascial", "hypothyroid" /
# "hypothyroidism", "periumbilic" /
# "periumbilical", "labium" / "labia", "conjunctival" / "conjunctiva"): a word also reaches its other
# forms that the code sets use.
_FORM_ENDINGS = (("", "al"), ("", "l"), ("", "ic"), ("", "ar"), ("ic", "ical"), ("um", "a"), ("us", "i"),
                 ("a", "ae"), ("is", "es"), ("ia", "ic"), ("y", "ic"), ("", "ism"))


def _other_forms(index: CodeIndex, token: str) -> list[tuple[str, float]]:
    out = []
    for a, b in _FORM_ENDINGS:
        for old, new in ((a, b), (b, a)):
            if token.endswith(old) and len(token) - len(old) >= 4:
                form = token[: len(token) - len(old)] + new
                if form != token and form in index.postings:
                    # never worth more than the typed word itself: a rare form ("pneumonic") must not
                    # outrank the word asked for ("pneumonia")
                    out.append((form, 0.75 * min(1.0, index.idf[token] / index.idf[form])))
    return list(dict.fromkeys(out))


def _resolve_uncached(index: CodeIndex, token: str) -> list[tuple[str, float]]:
    if token in index.postings:
        forms = _other_forms(index, token)
        if len(token) >= 7 and len(index.postings[token].ids) < _RARE:
            # a rare adjective or short form also reaches its noun ("hypothyroid" -> "hypothyroidism",
            # "conjunctival" -> "conjunctiva"): words sharing its stem that the code sets use more
            return list(dict.fromkeys([(token, 1.0), *forms, *_same_stem(index, token)]))
        return [(token, 1.0), *forms]
    if token.isdigit():
        return []
    out: list[tuple[str, float]] = []
    if len(token) >= 3:
        start = bisect.bisect_left(index.vocab, token)
        for word in index.vocab[start : start + 40]:
            if not word.startswith(token):
                break
            out.append((word, 0.8))
        if out:
            out.sort(key=lambda p: -len(index.postings[p[0]].ids))
            return out[:6]
    if len(token) >= 4:
        cutoff = 0.80 if len(token) >= 6 else 0.75
        # edit distance that counts a swapped pair as one slip ("pneumonai" -> "pneumonia", not "pneumonic"),
        # computed only against the few words a bigram filter lets through (never the whole vocabulary)
        choices = index.speller.candidates(token, cutoff) if index.speller else index.vocab
        found = process.extract(token, choices, scorer=OSA.normalized_similarity, limit=4, score_cutoff=cutoff)
        best = found[0][1] if found else 0
        for word, score, _ in found:
            if abs(len(word) - len(token)) <= 2 and score >= best - 0.05:
                out.append((word, 0.85 * score))
    return out


def _score(index: CodeIndex, concepts: list[list[_Alt]]) -> tuple[np.ndarray, np.ndarray]:
    """Per document: the sum over concepts of the best alternative's weight, and how many concepts matched.

    Only the documents in the query words' posting lists are touched: a few
    scratch arrays are filled and cleared again through those ids, never
    scanned whole per word."""
    n = index.size
    total = np.zeros(n, dtype=np.float32)
    covered = np.zeros(n, dtype=np.float32)
    scratch = _Scratch(n)
    for alts in concepts:
        parts = [_alt_scores(index, alt, scratch) for alt in alts]
        ids, vals = parts[0] if len(parts) == 1 else scratch.maximum(parts)
        total[ids] += vals  # ids are unique within each part, so fancy indexing adds once
        covered[ids] += 1
    return total, covered


class _Scratch:
    """Zeroed work arrays over the documents, cleared through the ids that were written."""

    def __init__(self, n: int):
        self.best = np.zeros(n, dtype=np.float32)
        self.acc = np.zeros(n, dtype=np.float32)
        self.present = np.zeros(n, dtype=np.int16)

    def maximum(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """The element-wise maximum of sparse (ids, values) vectors, as one sparse vector."""
        best = self.best
        for ids, vals in parts:
            best[ids] = np.maximum(best[ids], vals)
        ids = np.unique(np.concatenate([p[0] for p in parts]))
        vals = best[ids]
        best[ids] = 0.0
        return ids, vals


def _word_scores(index: CodeIndex, choices: list[tuple[str, float]], scratch: _Scratch):
    """(document ids, weight) of one query word: the best of its vocabulary tokens per document."""
    parts = []
    for token, confidence in choices:
        p = index.postings[token]
        parts.append((p.ids, p.scored if confidence == 1.0 else p.weights * (index.idf[token] * confidence)))
    return parts[0] if len(parts) == 1 else scratch.maximum(parts)


def _alt_scores(index: CodeIndex, alt: _Alt, scratch: _Scratch) -> tuple[np.ndarray, np.ndarray]:
    """(document ids, score) of one phrasing: its words' weights added; a phrase counts fully only
    when all its words are there."""
    per_word = [_word_scores(index, choices, scratch) for choices in alt.tokens]
    if len(per_word) == 1:
        return per_word[0]
    acc, present = scratch.acc, scratch.present
    for ids, vals in per_word:
        acc[ids] += vals
        present[ids] += 1
    ids = np.unique(np.concatenate([p[0] for p in per_word]))
    vals, complete = acc[ids], present[ids] == len(per_word)
    acc[ids] = 0.0
    present[ids] = 0
    return ids, np.where(complete, vals, vals * 0.35) / len(per_word) ** 0.5


class _Facts(NamedTuple):
    """What the rerank reads of a document's title; computed once per document and memoised."""

    title_words: frozenset
    sides: set
    base_words: frozenset  # the words before the 7th-character meaning: what the code is about
    non_words: frozenset   # words after a "non" prefix ("nondisplaced" -> "displaced")
    is_default: bool       # reads as a coding default ("unspecified", "NOS", ...)
    kind: str              # the encounter a 7th character names ("initial", ...), else ""
    open_meaning: bool     # the 7th character says "open"
    not_routine: bool      # the 7th character describes healing other than routine
    chapter_words: set | None  # pregnancy / newborn chapters: words the query must say
    history: bool
    family: bool
    absent: frozenset      # words the title says are absent ("... without nausea", "..., not intractable")
    measure: bool          # an HCPCS quality-measure reporting code (G8000-G9999, M1000-M1999)
    head: frozenset        # HCPCS: the stems of the item the descriptor names (before its first comma
                           # or linking word): "Tubing for breast pump, ..." -> tubing
    must_ask: frozenset    # the _MUST_ASK words the title says outside parentheses: "Flat foot [pes planus]
                           # (acquired)" is the default flat foot (a nonessential modifier), "Congenital ..." is not


def _title_facts(index: CodeIndex, i: int) -> _Facts:
    stored = index.facts.get(i)
    if stored is None:
        stored = index.facts[i] = _stored_facts(index, i)
    title_words, sides, base, non, is_default, kind, open_meaning, not_routine, chapter, history, family, \
        absent, measure, head, must_ask = stored
    return _Facts(frozenset(title_words.split()), set(sides.split()), frozenset(base.split()),
                  frozenset(non.split()), is_default, kind, open_meaning, not_routine,
                  _CONTEXT_CHAPTERS.get(chapter) if chapter else None, history, family,
                  frozenset(absent.split()), measure, frozenset(head.split()), frozenset(must_ask.split()))


def _stored_facts(index: CodeIndex, i: int) -> tuple:
    """The memo of one document's facts: strings and booleans only.  A tuple of such values is
    dropped from the cyclic collector's bookkeeping, so tens of thousands of memoised documents
    add nothing to its full passes (sets would: 0.3-0.5 s per pass measured on this machine)."""
    title = index.titles[i].lower()
    title_words = set(words(title))
    meaning = index.meanings[i]
    # the meaning is ranked apart from what the code is about
    base_text = title[: -len(meaning)] if meaning and title.endswith(meaning) else title
    # an organism "as the cause of diseases classified elsewhere" (B95-B97) is the organism: the phrase
    # says how the code is used, not detail the query left out
    base_text = base_text.replace(USAGE_PHRASE, "")
    # what a title says is absent ("without behavioral disturbance ...") is the default, not detail
    # the query left out; the words it negates are kept apart to steer away from a query that names them
    absent = set(words(" ".join(absent_clauses(base_text) + _NOT_CLAUSE.findall(base_text)))) - STOPWORDS
    base_list = words(_NOT_CLAUSE.sub("not ", without_absent(base_text)))  # "not specified as recurrent": absent too
    # the word after a later "unspecified" names detail that is missing ("..., unspecified ear", "pain in
    # unspecified joint"), not detail given; a title's first "Unspecified" qualifies what follows
    # ("Unspecified bacterial pneumonia": "bacterial" is detail)
    base = {w for j, w in enumerate(base_list) if not (j > 1 and base_list[j - 1] == "unspecified")}
    chapter = index.codes[i][0] if index.codes[i][0] in _CONTEXT_CHAPTERS else ""
    return (" ".join(sorted(title_words)), " ".join(sorted(qualifiers.title_sides(title_words))),
            " ".join(sorted(base)), " ".join(sorted(w[3:] for w in title_words if w.startswith("non") and len(w) > 5)),
            any(marker in title for marker in _DEFAULT_MARKERS) or title.endswith(" nos"),
            next((k for k in qualifiers.ENCOUNTERS if k in meaning), ""), "open" in meaning,
            "fracture with" in meaning and "routine" not in meaning, chapter, "history" in title,
            "family" in title_words, " ".join(sorted(absent)),
            index.systems[i] == HCPCS and index.codes[i][:2] in _MEASURE_RANGES,
            " ".join(sorted(_stems(_head_words(title)))) if index.systems[i] == HCPCS else "",
            " ".join(sorted(set(words(_PARENTHESISED.sub(" ", title))) & _MUST_ASK.keys())))


# An HCPCS descriptor names the item billed first ("Cane, includes canes of all materials ...",
# "Breast pump, manual, any type"); what follows a comma or a linking word describes it or names what it
# serves ("Replacement, tip, cane, crutch, walker", "Tubing for breast pump", "Assessment for hearing aid").
_HEAD_END = re.compile(r",|;|\(| for | of | to | used | with | without | includes | per | that | which ")


def _head_words(title: str) -> set[str]:
    return set(words(_HEAD_END.split(title, maxsplit=1)[0])) - STOPWORDS


# The rerank's factors above 1; their product bounds how far a candidate can climb, which lets the
# rerank stop reading candidates once none left could enter the results.
_SIDE_BOOST, _NEGATION_BOOST, _DEFAULT_BOOST, _CATEGORY_BOOST, _HEAD_BOOST = 1.06, 1.1, 1.03, 1.04, 1.1
_MAX_BOOST = _SIDE_BOOST * _NEGATION_BOOST * _DEFAULT_BOOST * _CATEGORY_BOOST * _HEAD_BOOST
_STOP_CHECK = 16  # candidates between checks whether the rest could still enter the results


def _rerank(index: CodeIndex, final: np.ndarray, query_words: list[str], limit: int,
            quals: qualifiers.Qualifiers | None = None, headers_wanted: bool = False,
            billable: np.ndarray | None = None, asked: set[str] | None = None) -> list[SearchHit]:
    quals = quals or qualifiers.Qualifiers(" ".join(query_words))
    asked = asked or set()
    billable = index.billable if billable is None else billable
    candidates = int(min(index.size, max(limit * 25, 250)))
    scored = np.flatnonzero(final > 0)
    if len(scored) > candidates:
        scored = scored[np.argpartition(-final[scored], candidates - 1)[:candidates]]
    top = scored[np.argsort(-final[scored], kind="stable")]  # best first, so the loop can stop early
    query_set = set(query_words)
    defaults = {DEFAULT_CATEGORIES[w] for w in query_words if w in DEFAULT_CATEGORIES}
    if _QUALIFIED & set(query_words):
        defaults = set()  # the query names the type itself
    states_detail = bool(quals.sides or quals.encounter)
    negated_stems = _stems(quals.negated_heads - _GENERAL - _NEUTRAL) if quals.negated else set()
    with_words = set(words(quals.with_text)) - STOPWORDS
    wants_history = bool(_HISTORY_WORDS & query_set)
    measures_wanted = bool(_MEASURE_WORDS & query_set)
    positive_words = set(words(quals.positive_text)) - STOPWORDS if quals.positive_text else query_set - STOPWORDS
    query_stems = _stems(positive_words)
    ranked: list[tuple[float, int, int, int]] = []
    family_best: dict = {}  # result family -> its best score so far
    for n, i in enumerate(top.tolist()):
        score = float(final[i])
        if n and n % _STOP_CHECK == 0 and len(family_best) >= limit:
            # every later candidate scores at most score * _MAX_BOOST: if `limit` families already
            # beat that, nothing later can enter the results
            if heapq.nlargest(limit, family_best.values())[-1] > score * _MAX_BOOST + 1e-6:
                break
        f = _title_facts(index, i)
        if index.stems[i]:
            if quals.encounter:
                score *= 1.0 if f.kind in quals.encounter else 0.8
            elif not index.codes[i].endswith("A"):
                score *= 0.9  # no encounter stated: the initial encounter is the usual question
            # a fracture not said to be open is coded closed, and healing not described is routine
            # (ICD-10-CM guidelines I.C.19.c.1; the 7th-character defaults)
            if f.open_meaning and "open" not in query_set:
                score *= 0.93
            if f.not_routine and not _HEALING & query_set:
                score *= 0.93
        if quals.sides:
            if f.sides & quals.sides:
                score *= _SIDE_BOOST
            elif f.sides:
                score *= 0.75  # the other side
        elif f.sides:
            score *= 0.96  # no side stated: the unspecified side is the coding default
        if negated_stems and negated_stems & _stems(f.base_words - f.absent - f.non_words):
            # the title is about what the query says is absent: "panic disorder without agoraphobia" is not
            # "Agoraphobia without panic disorder", "not intractable" is not "..., intractable, ..."
            score *= 0.6
        elif quals.negated:
            if f.title_words & _NEGATIVE_TITLE or f.non_words & quals.words_after_negation:
                score *= _NEGATION_BOOST
            elif "with" in f.title_words:
                # "asthma w/o status asthmaticus" must not answer "... with status asthmaticus"
                score *= 0.6 if negated_stems & _stems(f.title_words) else 0.85
        elif "without" in f.title_words and quals.with_:
            score *= 0.85
        if f.absent & with_words:
            score *= 0.6  # "with obstruction" asked, "without obstruction" titled
        elif f.absent & positive_words or (f.absent and asked & _stems(f.absent)):
            score *= 0.85  # also what the query's synonyms say: "blood in urine" is not "... without hematuria"  # "nausea and vomiting" is not "vomiting without nausea"
        if f.non_words & query_set:
            # "displaced" typed, "nondisplaced" titled
            score *= 0.85 ** len({w for w in f.non_words & query_set if "non" + w not in query_set})
        if not billable[i] and not headers_wanted:
            score *= 0.6  # a header cannot be reported; shown only when asked for
        elif f.is_default:
            # a query without detail usually means the default (unspecified) code
            if not ({"unspecified"} & query_set) and not states_detail:
                score *= _DEFAULT_BOOST
        if f.chapter_words and not f.chapter_words & query_set:
            score *= 0.85  # pregnancy / newborn codes only when the query says so
        if f.history and not wants_history:
            score *= 0.9
        if f.family and "family" not in query_set:
            score *= 0.85  # "alcoholism" is the patient's, not "alcoholism in family"
        if f.must_ask and any(not (asked & query_set) for word, asked in _MUST_ASK.items() if word in f.must_ask):
            score *= 0.9  # "lung cancer" is the primary site, not "Secondary malignant neoplasm of lung"
        if ("acquired" in f.title_words and _MUST_ASK["congenital"] & query_set
                or "congenital" in f.title_words and "acquired" in query_set):
            score *= 0.8  # the query states the other origin: "congenital flat foot" is not "(acquired)"
        if f.measure and not measures_wanted:
            score *= 0.85  # a quality-measure reporting code ("Pt dx dementia") is not the diagnosis
        if index.codes[i][:3] in defaults:
            score *= _CATEGORY_BOOST
        if f.head and query_stems:
            # the supply or drug the query names is the item billed, not a part or service for it
            score *= 1 + (_HEAD_BOOST - 1) * len(f.head & query_stems) / len(query_stems)
        # detail the query did not ask for ("typhoid pneumonia" for "pneumonia") counts against a
        # code: the coding default is the code that adds nothing the words do not say
        unasked = len(f.base_words - query_set - _NEUTRAL - STOPWORDS)
        score *= _UNASKED ** min(unasked, 6)
        unspecified = 0 if "unspecified" in f.title_words and not states_detail else 1
        extra = len(f.title_words - query_set)  # fewer words the query did not say = closer match
        score = round(score, 6)
        ranked.append((score, unspecified, extra, i))
        family = index.stems[i] or i
        if score > family_best.get(family, 0.0):
            family_best[family] = score
    if not headers_wanted:
        ranked = _headers_below_children(index, ranked, billable)
    ranked.sort(key=lambda p: (-p[0], p[1], p[2], index.codes[p[3]]))
    hits: list[SearchHit] = []
    families: set[str] = set()
    for score, _u, _e, i in ranked:
        family = index.stems[i]
        if family:
            if family in families:
                continue
            families.add(family)
        hits.append(SearchHit(index.codes[i], index.systems[i], index.titles[i], round(score, 4),
                              bool(billable[i])))
        if len(hits) >= limit:
            break
    return hits


def _headers_below_children(index: CodeIndex, ranked: list, billable: np.ndarray) -> list:
    """A header ranks just below the best of its billable codes among the candidates.

    A header cannot be reported: when a code under it is a candidate, that code
    is the answer ("Malnutrition of moderate degree" is E44.0, not the E44
    header whose title happens to repeat the query's words)."""
    best_below: dict[str, float] = {}
    for score, _u, _e, i in ranked:
        if billable[i]:
            code = index.codes[i]
            for k in range(3, len(code)):
                prefix = code[:k].rstrip(".")
                if score > best_below.get(prefix, 0.0):
                    best_below[prefix] = score
    out = []
    for entry in ranked:
        score, u, e, i = entry
        child = None if billable[i] else best_below.get(index.codes[i])
        out.append((min(score, round(child * 0.999, 6)), u, e, i) if child else entry)
    return out
