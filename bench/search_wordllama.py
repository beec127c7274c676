"""Does a wordllama semantic signal help code search?  (issue 14 point 6)

    .venv/bin/python bench/search_wordllama.py

Loads wordllama's static embeddings from the installed wheel with downloads
disabled, embeds every indexed title once (timed), then re-ranks our top 30
by ``score/top_score + alpha * cosine(query, title)`` for a few alphas and
reports recall@1/@10 on the tuning part and the hold-out part of the same
query sets as bench/search.py.  Writes bench/results/search_wordllama.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import mailbot.models  # noqa: E402,F401
from bench.search import QUERY_FILES, load_queries, matches  # noqa: E402
from mailbot.codes import index as index_mod  # noqa: E402
from mailbot.codes import search as search_mod  # noqa: E402
from mailbot.codes.importers import import_sets  # noqa: E402
from mailbot.db import Database  # noqa: E402

ALPHAS = (0.0, 0.1, 0.25, 0.5)
DIM = 256


def main() -> None:
    import wordllama
    from wordllama import WordLlama

    package = Path(wordllama.__file__).parent  # holds weights/ and tokenizers/, the layout of its cache
    start = time.perf_counter()
    wl = WordLlama.load(trunc_dim=DIM, disable_download=True, cache_dir=package)
    load_s = time.perf_counter() - start
    queries = load_queries([ROOT / "bench" / n for n in QUERY_FILES])
    tmp = tempfile.TemporaryDirectory()
    db = Database(f"sqlite:///{tmp.name}/wl.db")
    db.upgrade()
    import_sets(db, source=ROOT / "data" / "codesets")
    with db.read() as session:
        idx = index_mod.get_index(session)
        known = set(idx.codes)
        for q in queries:
            q["expected"] = [e for e in q["expected"] if e.endswith("*") or e in known] or q["expected"]
        start = time.perf_counter()
        titles = wl.embed(idx.titles, norm=True, batch_size=512)
        embed_s = time.perf_counter() - start
        out = {"load_seconds": round(load_s, 2), "embed_all_titles_seconds": round(embed_s, 1),
               "titles_matrix_mb": round(titles.nbytes / 2**20, 1), "dim": DIM, "alphas": {}}
        runs = {}
        for q in queries:
            hits = search_mod.search(session, q["query"], limit=30)
            runs[q["query"]] = hits
        qvecs = wl.embed([q["query"] for q in queries], norm=True)
        for alpha in ALPHAS:
            table = {}
            for part in ("tuning", "holdout"):
                qs = [(q, v) for q, v in zip(queries, qvecs) if q["holdout"] == (part == "holdout")]
                r1 = r10 = 0
                for q, v in qs:
                    hits = runs[q["query"]]
                    if not hits:
                        continue
                    top = max(h.score for h in hits) or 1.0
                    scored = sorted(hits, key=lambda h: -(h.score / top + alpha * float(
                        titles[idx.by_code[h.code]] @ v)))
                    codes = [h.code for h in scored[:10]]
                    r1 += bool(codes) and matches(codes[0], q["expected"])
                    r10 += any(matches(c, q["expected"]) for c in codes)
                table[part] = {"queries": len(qs), "recall@1": round(r1 / len(qs), 3),
                               "recall@10": round(r10 / len(qs), 3)}
            out["alphas"][str(alpha)] = table
            print(f"alpha {alpha}: {table}")
    print(f"load {load_s:.2f}s, embed {len(idx.titles)} titles {embed_s:.1f}s, matrix {out['titles_matrix_mb']} MB")
    (ROOT / "bench" / "results" / "search_wordllama.json").write_text(json.dumps(out, indent=2) + "\n")
    db.dispose()


if __name__ == "__main__":
    main()
