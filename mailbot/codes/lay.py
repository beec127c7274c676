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

from collections.abc import Callable

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
