"""Search the code sets the way coders and patients write.

``search(session, "sugar diabetes with kidney disease")`` -> ranked
:class:`SearchHit` list.  Handles lay words and abbreviations (the
:mod:`synonyms` table), inclusion terms, typos (rapidfuzz against the index
vocabulary), unfinished words (prefixes), any word order, and code prefixes
(``E11.``, ``S52.5``, ``J10``), alone or with words (``E11 kidney``).

How a query is scored: the query becomes *concepts* (a word, or a phrase from
the synonym table), each with alternative phrasings; a code's score is the
sum over concepts of the best alternative's BM25-style weight, scaled by the
share of concepts it covers.  Then a small re-rank: one result per
7th-character family (initial encounter first unless the query says
otherwise), billable codes slightly ahead of headers.
"""

from __future__ import annotations

import re
from datetime import date
from dataclasses import asdict, dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from sqlmodel import Session

from mailbot.codes import qualifiers
from mailbot.codes.index import CodeIndex, get_index, stem, tokens, words
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
            "condition", "acute", "primary", "essential", "elsewhere", "classified", "not", "specified"}
_UNASKED = 0.98
_NEGATIVE_TITLE = {"without", "no", "not", "uncomplicated"}
_HEALING = {"routine", "delayed", "nonunion", "malunion", "healing"}


def _stems(ws) -> set[str]:
    return {stem(w) for w in ws}
_MAX_EXPANSIONS = 4
_ASKS_HEADER = {"category", "categories", "header", "headers", "subcategory", "family"}
_QUALIFIED = {"type", "gestational", "secondary", "pregnancy", "neonatal", "induced", "due", "renovascular"}
_SINGLE_WORD_KEYS = [k for k in SYNONYMS if " " not in k and len(k) >= 5]
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
    return _rerank(index, final, raw_words, limit, quals, bool(prefixes) or bool(_ASKS_HEADER & set(raw_words)),
                   billable)


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
    concepts: list[list[_Alt]] = []
    i = 0
    while i < len(ws):
        match = None
        for n in range(min(_MAX_SYNONYM_WORDS, len(ws) - i), 0, -1):
            phrase = " ".join(ws[i : i + n])
            if phrase in SYNONYMS:
                match = (n, phrase)
                break
        if match:
            n, phrase = match
            alternatives = [phrase, *SYNONYMS[phrase]]
            i += n
        else:
            word = ws[i]
            i += 1
            if word in STOPWORDS or (len(word) == 1 and not word.isdigit()):
                continue
            alternatives = [word]
            if word not in index.postings and stem(word) not in index.postings and word in ABBREVIATIONS:
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


_RARE = 20  # documents: below this a word is rare enough to widen to its stem family


def _same_stem(index: CodeIndex, token: str) -> list[tuple[str, float]]:
    import bisect

    root = token[: max(6, len(token) - 2)]
    start = bisect.bisect_left(index.vocab, root)
    out = [(w, 0.8) for w in index.vocab[start : start + 30]
           if w.startswith(root) and w != token and len(index.postings[w].ids) >= _RARE]
    out.sort(key=lambda p: -len(index.postings[p[0]].ids))
    return out[:3]


def _resolve(index: CodeIndex, token: str) -> list[tuple[str, float]]:
    """Vocabulary tokens for a query token: itself, else words it begins, else near spellings."""
    if token in index.postings:
        if len(token) >= 7 and len(index.postings[token].ids) < _RARE:
            # a rare adjective or short form also reaches its noun ("hypothyroid" -> "hypothyroidism",
            # "conjunctival" -> "conjunctiva"): words sharing its stem that the code sets use more
            return [(token, 1.0), *_same_stem(index, token)]
        return [(token, 1.0)]
    if token.isdigit():
        return []
    out: list[tuple[str, float]] = []
    if len(token) >= 3:
        import bisect

        start = bisect.bisect_left(index.vocab, token)
        for word in index.vocab[start : start + 40]:
            if not word.startswith(token):
                break
            out.append((word, 0.8))
        if out:
            out.sort(key=lambda p: -len(index.postings[p[0]].ids))
            return out[:6]
    if len(token) >= 4:
        cutoff = 80 if len(token) >= 6 else 75
        # edit distance that counts a swapped pair as one slip ("pneumonai" -> "pneumonia", not "pneumonic")
        found = process.extract(token, index.vocab, scorer=OSA.normalized_similarity, limit=4,
                                score_cutoff=cutoff / 100)
        best = found[0][1] if found else 0
        for word, score, _ in found:
            if abs(len(word) - len(token)) <= 2 and score >= best - 0.05:
                out.append((word, 0.85 * score))
    return out


def _score(index: CodeIndex, concepts: list[list[_Alt]]) -> tuple[np.ndarray, np.ndarray]:
    n = index.size
    total = np.zeros(n, dtype=np.float32)
    covered = np.zeros(n, dtype=np.float32)
    for alts in concepts:
        best = np.zeros(n, dtype=np.float32)
        for alt in alts:
            alt_score = np.zeros(n, dtype=np.float32)
            present = np.zeros(n, dtype=np.int16)
            for choices in alt.tokens:
                word_best = np.zeros(n, dtype=np.float32)
                for token, confidence in choices:
                    p = index.postings[token]
                    # ids are unique within a posting list, so plain fancy indexing is safe (and fast)
                    word_best[p.ids] = np.maximum(word_best[p.ids], p.weights * (index.idf[token] * confidence))
                alt_score += word_best
                present += word_best > 0
            complete = present == len(alt.tokens)
            # a phrase counts fully only when all its words are there
            alt_score = np.where(complete, alt_score, alt_score * 0.35) / max(1, len(alt.tokens)) ** 0.5
            np.maximum(best, alt_score, out=best)
        total += best
        covered += best > 0
    return total, covered


def _title_facts(index: CodeIndex, i: int) -> tuple:
    """Lower-case title, its words, sides, words before the 7th-character meaning, words after a
    "non" prefix, and whether it reads as a coding default; memoised per document (the rerank
    reads them for hundreds of candidates per query)."""
    facts = index.facts.get(i)
    if facts is None:
        title = index.titles[i].lower()
        title_words = frozenset(words(title))
        meaning = index.meanings[i]
        # the words before the 7th-character meaning: what the code is about (the meaning is ranked apart)
        base = frozenset(words(title[: -len(meaning)])) if meaning and title.endswith(meaning) else title_words
        non = frozenset(w[3:] for w in title_words if w.startswith("non") and len(w) > 5)
        default = any(marker in title for marker in _DEFAULT_MARKERS) or title.endswith(" nos")
        facts = index.facts[i] = (title, title_words, qualifiers.title_sides(title_words), base, non, default)
    return facts


def _rerank(index: CodeIndex, final: np.ndarray, query_words: list[str], limit: int,
            quals: qualifiers.Qualifiers | None = None, headers_wanted: bool = False,
            billable: np.ndarray | None = None) -> list[SearchHit]:
    quals = quals or qualifiers.Qualifiers(" ".join(query_words))
    billable = index.billable if billable is None else billable
    candidates = int(min(index.size, max(limit * 25, 250)))
    top = np.argpartition(-final, candidates - 1)[:candidates] if candidates < index.size else np.arange(index.size)
    query_set = set(query_words)
    defaults = {DEFAULT_CATEGORIES[w] for w in query_words if w in DEFAULT_CATEGORIES}
    if _QUALIFIED & set(query_words):
        defaults = set()  # the query names the type itself
    states_detail = bool(quals.sides or quals.encounter)
    ranked: list[tuple[float, int, int, int]] = []
    for i in top.tolist():
        score = float(final[i])
        if score <= 0:
            continue
        title, title_words, sides, base_words, non_words, is_default = _title_facts(index, i)
        if index.stems[i]:
            meaning = index.meanings[i]
            kind = next((k for k in qualifiers.ENCOUNTERS if k in meaning), "")
            if quals.encounter:
                score *= 1.0 if kind in quals.encounter else 0.8
            elif not index.codes[i].endswith("A"):
                score *= 0.9  # no encounter stated: the initial encounter is the usual question
            # a fracture not said to be open is coded closed, and healing not described is routine
            # (ICD-10-CM guidelines I.C.19.c.1; the 7th-character defaults)
            if "open" in meaning and "open" not in query_set:
                score *= 0.93
            if "fracture with" in meaning and "routine" not in meaning and not _HEALING & query_set:
                score *= 0.93
        if quals.sides:
            if sides & quals.sides:
                score *= 1.06
            elif sides:
                score *= 0.75  # the other side
        elif sides:
            score *= 0.96  # no side stated: the unspecified side is the coding default
        if quals.negated:
            if title_words & _NEGATIVE_TITLE or non_words & quals.words_after_negation:
                score *= 1.1
            elif "with" in title_words:
                # "asthma w/o status asthmaticus" must not answer "... with status asthmaticus"
                score *= 0.6 if _stems(quals.words_after_negation) & _stems(title_words) else 0.85
        elif "without" in title_words and quals.with_:
            score *= 0.85
        if non_words & query_set:
            # "displaced" typed, "nondisplaced" titled
            score *= 0.85 ** len({w for w in non_words & query_set if "non" + w not in query_set})
        if not billable[i] and not headers_wanted:
            score *= 0.6  # a header cannot be reported; shown only when asked for
        elif is_default:
            # a query without detail usually means the default (unspecified) code
            if not ({"unspecified"} & query_set) and not states_detail:
                score *= 1.03
        chapter_words = _CONTEXT_CHAPTERS.get(index.codes[i][0])
        if chapter_words and not chapter_words & query_set:
            score *= 0.85  # pregnancy / newborn codes only when the query says so
        if "history" in title and not _HISTORY_WORDS & query_set:
            score *= 0.9
        if "family" in title_words and "family" not in query_set:
            score *= 0.85  # "alcoholism" is the patient's, not "alcoholism in family"
        category = index.codes[i][:3]
        if category in defaults:
            score *= 1.04
        # detail the query did not ask for ("typhoid pneumonia" for "pneumonia") counts against a
        # code: the coding default is the code that adds nothing the words do not say
        unasked = len(base_words - query_set - _NEUTRAL - STOPWORDS)
        score *= _UNASKED ** min(unasked, 6)
        unspecified = 0 if "unspecified" in title_words and not states_detail else 1
        extra = len(title_words - query_set)  # fewer words the query did not say = closer match
        ranked.append((round(score, 6), unspecified, extra, i))
    # ties: the coding default ("unspecified") first, then the closest title; never code order alone
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
