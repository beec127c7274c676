"""Lay words -> the Greek and Latin compounds the code sets use.

Patients write "blood in urine", "neck pain", "joint pain", "liver
inflammation"; the tabular says hematuria, cervicalgia, arthralgia,
hepatitis.  Rather than list such phrases one by one, :func:`compounds`
builds the medical word from the combining forms of its parts (the tables
below, from standard medical-terminology roots and suffixes) and keeps it
only if the code sets use it: "blood" (hem-, hemat-) + "urine" (-uria) ->
"hematuria".  A phrase of two lay words, in either order, with at most one
small word between them ("blood in urine", "pain in the neck"), is tried.

Everything here is a table: add a row, not a branch.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from mailbot.codes.index import stem, words

# lay word -> combining forms that begin a compound
ROOTS: dict[str, tuple[str, ...]] = {
    "blood": ("hem", "hemat", "haem"), "neck": ("cervic",), "head": ("cephal",), "joint": ("arthr",),
    "joints": ("arthr",), "muscle": ("my",), "muscles": ("my",), "nerve": ("neur",), "nerves": ("neur",),
    "skin": ("derm", "dermat"), "liver": ("hepat",), "kidney": ("nephr",), "kidneys": ("nephr",),
    "stomach": ("gastr",), "bowel": ("enter", "col"), "intestine": ("enter",), "colon": ("col",),
    "bladder": ("cyst",), "breast": ("mast", "mamm"), "ear": ("ot",), "nose": ("rhin",), "eye": ("ophthalm",),
    "mouth": ("stomat",), "tongue": ("gloss",), "lung": ("pneum", "pneumon"), "heart": ("cardi",),
    "vein": ("phleb",), "veins": ("phleb",), "artery": ("arteri",), "bone": ("oste",), "bones": ("oste",),
    "brain": ("encephal",), "spine": ("spondyl",), "womb": ("hyster", "metr"), "tooth": ("odont",),
    "teeth": ("odont",), "gum": ("gingiv",), "gums": ("gingiv",), "throat": ("pharyng",), "voice": ("laryng",),
    "rib": ("cost",), "ribs": ("cost",), "foot": ("pod",), "feet": ("pod",), "fat": ("lip",), "sugar": ("glyc",),
    "stone": ("lith",), "stones": ("lith",), "nail": ("onych",), "nails": ("onych",), "hair": ("trich",),
    "gland": ("aden",), "glands": ("aden",), "vessel": ("angi",), "vessels": ("angi",), "back": ("dors",),
    "chest": ("thorac",), "pus": ("py",), "sweat": ("hidr",), "tear": ("dacry",), "eyelid": ("blephar",),
    "gallbladder": ("cholecyst",), "bile": ("chol",), "testicle": ("orch",),
    "ovary": ("oophor",), "pancreas": ("pancreat",), "prostate": ("prostat",), "spleen": ("splen",),
    "sinus": ("sinus",), "sinuses": ("sinus",), "tendon": ("tendin", "ten"), "cartilage": ("chondr",),
    "marrow": ("myel",), "high": ("hyper",), "low": ("hypo",), "slow": ("brady",), "fast": ("tachy",),
    "painful": ("dys",), "difficult": ("dys",),
}
# lay word -> combining forms that end a compound
ENDINGS: dict[str, tuple[str, ...]] = {
    "pain": ("algia", "dynia"), "ache": ("algia",), "aches": ("algia",), "hurts": ("algia",), "sore": ("algia",),
    "inflammation": ("itis",), "inflamed": ("itis",), "infection": ("itis",), "urine": ("uria",),
    "urination": ("uria",), "peeing": ("uria",), "bleeding": ("rrhage", "rrhagia"), "enlarged": ("megaly",),
    "enlargement": ("megaly",), "stones": ("lithiasis",), "stone": ("lithiasis",), "hardening": ("sclerosis",),
    "softening": ("malacia",), "discharge": ("rrhea",), "runny": ("rrhea",), "paralysis": ("plegia",),
    "weakness": ("paresis",), "sugar": ("glycemia",), "heartbeat": ("cardia",), "pulse": ("cardia",),
    "breathing": ("pnea",), "swallowing": ("phagia",), "speech": ("phasia",), "periods": ("menorrhea",),
    "pus": ("pyuria",), "tumor": ("oma",), "lump": ("oma",), "hernia": ("cele",),
    "rupture": ("rrhexis",), "spasm": ("spasm",),
}
_SMALL = {"in", "of", "the", "my", "a", "on", "from", "with", "and"}
_LINKS = ("", "o")  # hemat+uria, my+o+...: the connecting vowel of compounds


def compounds(words: list[str], i: int, known: Callable[[str], bool]) -> tuple[int, list[str]] | None:
    """A compound for the lay phrase starting at ``words[i]``: (words it spans, [compound words]).

    ``known(word)`` says whether the code sets use a word; only such words are returned."""
    for span in (3, 2):
        if i + span > len(words):
            continue
        first, last = words[i], words[i + span - 1]
        if span == 3 and words[i + 1] not in _SMALL:
            continue
        found = _join(first, last, known) + _join(last, first, known)
        if found:
            return span, list(dict.fromkeys(found))
    return None


def _join(head: str, tail: str, known: Callable[[str], bool]) -> list[str]:
    out = []
    for root in ROOTS.get(head, ()):
        for ending in ENDINGS.get(tail, ()):
            for link in _LINKS:
                word = root + link + ending
                if known(word):
                    out.append(word)
    return out


# --- lay phrases the Human Phenotype Ontology names --------------------------------------------
#
# The HPO marks thousands of its synonyms as what a layperson says: "Low platelet count" is
# Thrombocytopenia, "Bunion" is Hallux valgus, "Blood clot in a deep vein" is Deep venous thrombosis.
# scripts/build_lay_terms.py copies those terms out of the ontology (data/search/hpo_lay_terms.json.gz);
# a lay phrase in a query also searches the term's name and exact synonyms that the code sets use.

_LAY_TERMS_FILE = Path(__file__).resolve().parents[2] / "data" / "search" / "hpo_lay_terms.json.gz"
# small words a phrase may have or lack ("blood clot in a deep vein" / "blood clot deep vein")
_FILLER = frozenset({"in", "of", "the", "a", "an", "on", "my", "from", "at", "to", "and"})
# what a lab phrase may leave unsaid at its end: "low platelet count" is asked as "low platelets"
_MEASURE_STEMS = frozenset(stem(w) for w in ("count", "level", "concentration", "number", "amount"))
MAX_LAY_WORDS = 6


def _key(ws: list[str]) -> tuple[str, ...]:
    kept = [stem(w) for w in ws if w not in _FILLER]
    while len(kept) > 1 and kept[-1] in _MEASURE_STEMS:
        kept.pop()
    return tuple(kept)


@lru_cache(maxsize=1)
def _lay_file() -> dict:
    try:
        with gzip.open(_LAY_TERMS_FILE, "rt", encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {}  # a checkout without derived data: search still works on the other tables


def acknowledgement() -> str:
    """The statement the HPO licence asks a service using it to show, with the release used."""
    return _lay_file().get("acknowledgement", "")


@lru_cache(maxsize=1)
def lay_terms() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Lay phrase (as :func:`_key`) -> the medical names of the term(s) it names, best first."""
    table: dict[tuple[str, ...], list[str]] = {}
    for term in _lay_file().get("terms", ()):
        names = [term["name"], *term["exact"]]
        own = _key(words(term["name"]))  # a lay synonym that is the name itself adds nothing
        for phrase in term["lay"]:
            ws = words(phrase)
            if not ws or len(ws) > MAX_LAY_WORDS:
                continue
            keys = [_key(ws)]
            if len(ws) == 2:
                # "near sighted" is also typed "nearsighted", "hunched back" also "hunchback"
                keys += [_key(["".join(ws)]), _key(["".join(stem(w) for w in ws)])]
            for key in keys:
                if key and key != own:
                    bucket = table.setdefault(key, [])
                    bucket += [n for n in names if n not in bucket]
    return {key: tuple(names) for key, names in table.items()}


def lay_term(ws: list[str], i: int, said: Callable[[list[str]], bool],
             known_phrase: Callable[[str], bool]) -> tuple[int, list[str]] | None:
    """The medical names of the longest HPO lay phrase starting at ``words[i]``: (words it spans, names).

    A lay phrase counts only where the code sets do not say it themselves: ``said(words)`` is true
    when some code's title holds all of the phrase's words ("small kidneys" is N27's own wording,
    "low platelets" is nobody's).  Only names whose every word the code sets use
    (``known_phrase``) are returned."""
    table = lay_terms()
    if not table or ws[i] in _FILLER:
        return None
    for span in range(min(MAX_LAY_WORDS, len(ws) - i), 0, -1):
        if ws[i + span - 1] in _FILLER:
            continue
        key = _key(ws[i : i + span])
        names = table.get(key)
        if not names or said([w for w in ws[i : i + span] if w not in _FILLER]):
            continue
        found = [name for name in names if known_phrase(name)]
        if found:
            return span, found
    return None
