"""Write the generated part of the search benchmark from the shipped code sets.

    .venv/bin/python bench/search_cases.py            # rewrites bench/search_queries_generated.csv

Written BEFORE the engine was tuned for issue 14, and never edited to suit
the engine.  Each query is made from a *source* text of the shipped data
(a tabular title, an inclusion term, an HCPCS short or long descriptor) by
rewrites that imitate how coders write; the expected answer is the code the
source text belongs to, plus every other code whose source text is the same
(so an ambiguous query accepts all its owners).  Styles:

- ``formal``: ICD-9-CM-like formal titles -- an inclusion term of a billable
  code, or its title rewritten the way ICD-9-CM phrased titles ("..., NOS",
  "without mention of", "NEC", parentheses dropped);
- ``abbrev``: a billable title with the shorthand coders write (the table
  below, from coding practice: fx, w/o, lt, htn, dm2 ...), small words dropped;
- ``typo``: a short billable title with one or two typing slips (a dropped,
  doubled, swapped or neighbouring-key letter) in its longer words;
- ``detail``: laterality and encounter detail (7th character) as coders type
  it ("lt", "init encounter closed", "subs routine healing", "sequela");
- ``hcpcs``: HCPCS Level II short descriptors (coder shorthand by design) and
  the opening words of long descriptors, for supply, drug, DME, orthotic and
  vision codes (A B E J K L Q V) valid today.

The hand-written sets (``search_queries.csv``: lay words, abbreviations,
drugs; ``search_queries_holdout.csv``) keep their own rows; bench/search.py
gives every query a style and puts about 30% of all queries in a hold-out
part chosen by a hash of the query text.
"""

from __future__ import annotations

import csv
import random
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

import mailbot.models  # noqa: E402,F401
from mailbot.codes.importers import import_sets  # noqa: E402
from mailbot.db import Database  # noqa: E402

SEED = 20261202
OUT = ROOT / "bench" / "search_queries_generated.csv"
COUNTS = {"formal": 160, "abbrev": 130, "typo": 130, "detail": 130, "hcpcs": 110}

# Shorthand coders write in notes, queries and encoder boxes (longest first
# wins).  Written from coding practice, not from the engine's tables.
SHORTHAND = [
    ("type 2 diabetes mellitus", ["dm2", "t2dm", "type 2 dm"]), ("type 1 diabetes mellitus", ["dm1", "t1dm"]),
    ("diabetes mellitus", ["dm"]), ("chronic kidney disease", ["ckd"]), ("end stage renal disease", ["esrd"]),
    ("chronic obstructive pulmonary disease", ["copd"]), ("congestive heart failure", ["chf"]),
    ("heart failure", ["hf"]), ("atrial fibrillation", ["afib", "a-fib"]), ("myocardial infarction", ["mi"]),
    ("hypertensive", ["htn"]), ("hypertension", ["htn"]), ("urinary tract infection", ["uti"]),
    ("gastro-esophageal reflux disease", ["gerd"]), ("deep vein thrombosis", ["dvt"]),
    ("cerebral infarction", ["cva"]), ("osteoarthritis", ["oa"]), ("rheumatoid arthritis", ["ra"]),
    ("benign prostatic hyperplasia", ["bph"]), ("coronary artery disease", ["cad"]),
    ("obstructive sleep apnea", ["osa"]), ("fracture", ["fx"]), ("without", ["w/o", "wo"]), ("with", ["w/", "w"]),
    ("left", ["lt", "l"]), ("right", ["rt", "r"]), ("bilateral", ["bilat", "b/l"]), ("history", ["hx"]),
    ("unspecified", ["unsp", "unspec"]), ("abdominal", ["abd"]), ("disorder", ["d/o"]), ("infection", ["inf"]),
    ("initial encounter", ["init", "initial enc"]), ("subsequent encounter", ["subs", "subsequent enc"]),
    ("encounter", ["enc"]), ("pneumonia", ["pna"]), ("tuberculosis", ["tb"]), ("multiple sclerosis", ["ms"]),
    ("posttraumatic stress disorder", ["ptsd"]), ("major depressive disorder", ["mdd"]),
    ("attention-deficit hyperactivity disorder", ["adhd"]), ("shortness of breath", ["sob"]),
    ("nausea and vomiting", ["n/v"]), ("hyperlipidemia", ["hld"]), ("osteoporosis", ["op"]),
]
HCPCS_LETTERS = "ABEJKLQV"
# Words coders leave out.
DROP = {"of", "the", "and", "or", "in", "to", "for", "a", "an", "by"}
# Keyboard neighbours for a slipped key.
KEYS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
NEAR = {c: "".join(row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)) for row in KEYS for i, c in enumerate(row)}


def norm(text_: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text_.lower()).split())


def strip_parens(title: str) -> str:
    return " ".join(re.sub(r"\([^)]*\)|\[[^]]*\]", " ", title).split()).strip(" ,")


def icd9_style(title: str, rnd: random.Random) -> str:
    t = strip_parens(title)
    if t.lower().startswith("unspecified "):
        t = t[12:] + ", unspecified"
    t = t.replace("not elsewhere classified", "NEC")
    t = re.sub(r"\bwithout\b", "without mention of", t)
    t = re.sub(r", unspecified$", rnd.choice([", unspecified", " NOS", ", unspecified"]), t)
    return t


def shorthand(title: str, rnd: random.Random) -> tuple[str, int]:
    t = " " + strip_parens(title).lower().replace(",", " ") + " "
    clinical = 0
    for long, shorts in SHORTHAND:
        pattern = f" {long} "
        if pattern in t:
            t = t.replace(pattern, f" {rnd.choice(shorts)} ")
            if long not in ("with", "without", "left", "right", "encounter", "unspecified"):
                clinical += 1
    out = [w for w in t.split() if w not in DROP]
    return " ".join(out), clinical


def slip(word: str, rnd: random.Random) -> str:
    i = rnd.randrange(1, len(word) - 1)
    kind = rnd.choice(["drop", "double", "swap", "near"])
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    near = NEAR.get(word[i], "")
    return word[:i] + (rnd.choice(near) if near else word[i]) + word[i + 1:]


def typo(title: str, rnd: random.Random) -> str | None:
    ws = strip_parens(title).lower().replace(",", "").split()
    long_ids = [i for i, w in enumerate(ws) if len(w) >= 6 and w.isalpha()]
    if not long_ids:
        return None
    for i in rnd.sample(long_ids, min(len(long_ids), rnd.choice([1, 1, 2]))):
        ws[i] = slip(ws[i], rnd)
    return " ".join(ws)


ENCOUNTER = [
    ("initial encounter for closed fracture", ["initial encounter closed", "init encounter closed", "init closed fx",
                                               "initial closed"]),
    ("initial encounter for open fracture type i or ii", ["initial open type i or ii", "init open fx type 1 or 2"]),
    ("initial encounter for open fracture type iiia, iiib, or iiic", ["initial open type iii", "init open 3a 3b 3c"]),
    ("initial encounter for open fracture", ["initial open", "init open fx"]),
    ("subsequent encounter for fracture with routine healing", ["subsequent routine healing", "subs routine healing"]),
    ("subsequent encounter for fracture with delayed healing", ["subsequent delayed healing", "subs delayed healing"]),
    ("subsequent encounter for fracture with nonunion", ["subsequent nonunion", "subs nonunion"]),
    ("subsequent encounter for fracture with malunion", ["subsequent malunion", "subs malunion"]),
    ("initial encounter", ["initial", "init", "initial encounter", "init enc"]),
    ("subsequent encounter", ["subsequent", "subs", "subsequent encounter"]),
    ("sequela", ["sequela", "sequelae"]),
]
SIDES = {"left": ["left", "lt"], "right": ["right", "rt"], "bilateral": ["bilateral", "bilat"]}


def detail(title: str, rnd: random.Random) -> str:
    t = strip_parens(title).lower()
    tail = ""
    for long, shorts in ENCOUNTER:
        if t.endswith(", " + long):
            t, tail = t[: -len(long) - 2], rnd.choice(shorts)
            break
    ws = [w for w in t.replace(",", " ").split() if w not in DROP]
    side = next((w for w in ws if w in SIDES), None)
    ws = ["fx" if w == "fracture" and rnd.random() < 0.5 else w for w in ws]
    if side:
        short = rnd.choice(SIDES[side])
        ws.remove(side)
        ws = [short, *ws] if rnd.random() < 0.5 else [*ws, short]
    return " ".join(ws + ([tail] if tail else []))


def main() -> None:
    rnd = random.Random(SEED)
    tmp = tempfile.TemporaryDirectory()
    db = Database(f"sqlite:///{tmp.name}/cases.db")
    db.upgrade()
    import_sets(db, source=ROOT / "data" / "codesets")
    with db.read() as session:
        rows = session.execute(text(
            "SELECT system, code, title, short_title, billable, notes FROM code_entry "
            "WHERE system IN ('icd10cm', 'hcpcs') AND valid_from <= date('now') "
            "AND (valid_to IS NULL OR valid_to >= date('now')) ORDER BY system, code")).all()
    import json

    icd = [(c, t, json.loads(n or "{}")) for s, c, t, _sh, b, n in rows if s == "icd10cm" and b]
    hcpcs = [(c, t, sh) for s, c, t, sh, _b, _n in rows if s == "hcpcs"]
    # supplies, drugs, DME, orthotics, vision/hearing: what coders search for (the
    # G-code quality measures' short descriptors are not search phrases)
    hcpcs_sample = [r for r in hcpcs if r[0][0] in HCPCS_LETTERS]
    owners: dict[str, set[str]] = defaultdict(set)  # normalised source text -> codes
    for code, title, notes in icd:
        owners[norm(strip_parens(title))].add(code)
        for term in notes.get("inclusion_terms", []):
            owners[norm(strip_parens(term))].add(code)
    for code, title, short in hcpcs:
        owners["h:" + norm(short)].add(code)
        owners["h:" + " ".join(norm(title).split()[:10])].add(code)

    out: list[dict] = []
    seen: set[str] = set()

    def add(query: str, source: str, style: str, system: str, why: str) -> bool:
        key = norm(query)
        if not key or key in seen or len(key.split()) > 16:
            return False
        seen.add(key)
        expected = sorted(owners.get(source, set()))
        out.append({"query": query, "expected": "|".join(expected), "system": system, "style": style, "source": why})
        return True

    def sample(pool, n, make):
        made = 0
        for item in rnd.sample(pool, len(pool)):
            if made >= n:
                break
            made += bool(make(item))

    no7 = [r for r in icd if len(r[0]) < 8 and not r[0][0] in "STVWXY"]

    def make_formal(r):
        code, title, notes = r
        terms = [t for t in notes.get("inclusion_terms", []) if len(t.split()) >= 2]
        if terms and rnd.random() < 0.5:
            term = rnd.choice(terms)
            q = strip_parens(term)
            q = q[:-4] if q.endswith(" NOS") else q
            return add(q, norm(strip_parens(term)), "formal", "icd10cm", f"inclusion term of {code}")
        if len(title.split()) < 3:
            return False
        return add(icd9_style(title, rnd), norm(strip_parens(title)), "formal", "icd10cm", f"title of {code}")

    sample(no7, COUNTS["formal"], make_formal)

    def make_abbrev(r):
        code, title, _ = r
        q, clinical = shorthand(title, rnd)
        return clinical and add(q, norm(strip_parens(title)), "abbrev", "icd10cm", f"title of {code}")

    sample(icd, COUNTS["abbrev"], make_abbrev)

    def make_typo(r):
        code, title, _ = r
        if len(strip_parens(title).split()) > 9:
            return False
        q = typo(title, rnd)
        return q and add(q, norm(strip_parens(title)), "typo", "icd10cm", f"title of {code}")

    sample(no7, COUNTS["typo"], make_typo)

    sided = [r for r in icd if re.search(r"\b(left|right|bilateral)\b", r[1]) or (len(r[0]) == 8 and r[0][0] in "ST")]

    def make_detail(r):
        code, title, _ = r
        return add(detail(title, rnd), norm(strip_parens(title)), "detail", "icd10cm", f"title of {code}")

    sample(sided, COUNTS["detail"], make_detail)

    def make_hcpcs(r):
        code, title, short = r
        if rnd.random() < 0.5 and short:
            return add(short, "h:" + norm(short), "hcpcs", "hcpcs", f"short descriptor of {code}")
        words_ = norm(title).split()[:10]
        if len(words_) < 3:
            return False
        return add(" ".join(strip_parens(title).split()[:10]).rstrip(",;"), "h:" + " ".join(words_), "hcpcs",
                   "hcpcs", f"long descriptor of {code}")

    sample(hcpcs_sample, COUNTS["hcpcs"], make_hcpcs)
    with open(OUT, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["query", "expected", "system", "style", "source"])
        writer.writeheader()
        writer.writerows(out)
    counts = defaultdict(int)
    for row in out:
        counts[row["style"]] += 1
    print(f"wrote {len(out)} queries to {OUT}: {dict(counts)}")
    db.dispose()


if __name__ == "__main__":
    main()
