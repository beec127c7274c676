"""Search benchmark: our code search vs two baselines on lay/paraphrased queries.

    .venv/bin/python bench/search.py [--database URL] [--queries bench/search_queries.csv]

Imports every shipped code set into a fresh database (timed: that is the
"full import" figure), then runs each query of ``search_queries.csv``
(written before the engine, from how coders and patients talk; expected
codes were not copied from descriptors) through:

- ``ours``: :func:`mailbot.codes.search.search`;
- ``ours_no_synonyms``: the same engine with the synonym table emptied (shows
  how much the hand-written table contributes -- it was written by the same
  person as the queries, so read the gap with that in mind);
- ``fts5_bm25``: SQLite FTS5, bm25 over the descriptors of the same codes,
  query words OR-ed (AND finds nothing for most lay queries);
- ``rapidfuzz_token_set``: rapidfuzz ``token_set_ratio`` of the query against
  every descriptor.

A second set, ``search_queries_holdout.csv``, was written after the engine
existed and is reported separately; it was run once and never used to
change the engine or the synonym table.

An expected entry ending in ``*`` accepts any code under that prefix (used
where a lay query cannot say more, e.g. "broken ankle").  Prints recall@1,
recall@10, MRR and latency p50/p95 per engine and ratios against the
baselines; writes ``bench/results/search.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rapidfuzz import fuzz, process  # noqa: E402

import mailbot.models  # noqa: E402,F401
from mailbot.codes import index as index_mod  # noqa: E402
from mailbot.codes import search as search_mod  # noqa: E402
from mailbot.codes.importers import import_sets  # noqa: E402
from mailbot.db import Database  # noqa: E402


def load_queries(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{"query": r["query"], "expected": r["expected"].split("|"), "system": r["system"]}
                for r in csv.DictReader(fh)]


def matches(code: str, expected: list[str]) -> bool:
    return any(code.startswith(e[:-1]) if e.endswith("*") else code == e for e in expected)


def evaluate(name: str, run, queries: list[dict]) -> dict:
    ranks, latencies, misses = [], [], []
    for q in queries:
        start = time.perf_counter()
        codes = run(q["query"])
        latencies.append((time.perf_counter() - start) * 1000)
        rank = next((i + 1 for i, c in enumerate(codes[:10]) if matches(c, q["expected"])), None)
        ranks.append(rank)
        if rank is None:
            misses.append({"query": q["query"], "expected": q["expected"], "got": codes[:3]})
    n = len(queries)
    lat = sorted(latencies)
    return {
        "engine": name,
        "queries": n,
        "recall@1": round(sum(r == 1 for r in ranks) / n, 3),
        "recall@10": round(sum(r is not None for r in ranks) / n, 3),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 3),
        "latency_ms_p50": round(statistics.median(lat), 2),
        "latency_ms_p95": round(lat[int(0.95 * (n - 1))], 2),
        "misses": misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--queries", default=str(ROOT / "bench" / "search_queries.csv"))
    parser.add_argument("--holdout", default=str(ROOT / "bench" / "search_queries_holdout.csv"),
                        help="second query set written after the engine and never used to tune it")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "search.json"))
    args = parser.parse_args()
    queries = load_queries(Path(args.queries))

    tmp = tempfile.TemporaryDirectory()
    db = Database(args.database or f"sqlite:///{tmp.name}/bench.db")
    db.upgrade()
    start = time.perf_counter()
    results = import_sets(db, source=ROOT / "data" / "codesets")
    import_seconds = time.perf_counter() - start
    rows = sum(r.rows for r in results)

    with db.read() as session:
        start = time.perf_counter()
        idx = index_mod.get_index(session)
        build_seconds = time.perf_counter() - start

        def ours(q: str) -> list[str]:
            return [h.code for h in search_mod.search(session, q, limit=10)]

        fts = sqlite3.connect(":memory:")
        fts.execute("CREATE VIRTUAL TABLE doc USING fts5(code UNINDEXED, title)")
        fts.executemany("INSERT INTO doc VALUES (?, ?)", list(zip(idx.codes, idx.titles)))

        def fts5(q: str) -> list[str]:
            terms = index_mod.words(q)
            if not terms:
                return []
            match = " OR ".join(f'"{t}"' for t in terms)
            return [r[0] for r in fts.execute("SELECT code FROM doc WHERE doc MATCH ? ORDER BY bm25(doc) LIMIT 10",
                                              (match,))]

        def fuzzy(q: str) -> list[str]:
            return [idx.codes[i] for _t, _s, i in process.extract(q, idx.titles, scorer=fuzz.token_set_ratio,
                                                                 limit=10)]

        def run_all(qs: list[dict]) -> list[dict]:
            out = [evaluate("ours", ours, qs)]
            saved = (search_mod.SYNONYMS, search_mod._SINGLE_WORD_KEYS, search_mod.DEFAULT_CATEGORIES)
            search_mod.SYNONYMS, search_mod._SINGLE_WORD_KEYS, search_mod.DEFAULT_CATEGORIES = {}, [], {}
            try:
                out.append(evaluate("ours_no_synonyms", ours, qs))
            finally:
                search_mod.SYNONYMS, search_mod._SINGLE_WORD_KEYS, search_mod.DEFAULT_CATEGORIES = saved
            out.append(evaluate("fts5_bm25", fts5, qs))
            out.append(evaluate("rapidfuzz_token_set", fuzzy, qs))
            return out

        engines = run_all(queries)
        holdout_path = Path(args.holdout)
        holdout = run_all(load_queries(holdout_path)) if holdout_path.exists() else []

    ours_r = engines[0]
    report = {
        "database": db.dialect,
        "queries": len(queries),
        "full_import_seconds": round(import_seconds, 1),
        "imported_rows": rows,
        "index_build_seconds": round(build_seconds, 2),
        "indexed_codes": idx.size,
        "engines": engines,
        "holdout": {"queries": holdout[0]["queries"] if holdout else 0, "engines": holdout},
        "ratios": {
            f"ours/{e['engine']}": {k: round(ours_r[k] / e[k], 2) if e[k] else None
                                    for k in ("recall@1", "recall@10", "mrr")}
            for e in engines[1:]
        },
    }
    print(f"full import: {import_seconds:.1f}s ({rows} rows, {db.dialect}); index build {build_seconds:.2f}s "
          f"over {idx.size} codes; {len(queries)} queries")
    print(f"{'engine':24} {'R@1':>6} {'R@10':>6} {'MRR':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for e in engines:
        print(f"{e['engine']:24} {e['recall@1']:6.3f} {e['recall@10']:6.3f} {e['mrr']:6.3f} "
              f"{e['latency_ms_p50']:8.2f} {e['latency_ms_p95']:8.2f}")
    if holdout:
        print(f"hold-out set ({holdout[0]['queries']} queries, written after the engine, not used for tuning):")
        for e in holdout:
            print(f"{e['engine']:24} {e['recall@1']:6.3f} {e['recall@10']:6.3f} {e['mrr']:6.3f} "
                  f"{e['latency_ms_p50']:8.2f} {e['latency_ms_p95']:8.2f}")
    for name, ratio in report["ratios"].items():
        print(f"{name:36} R@1 x{ratio['recall@1']}  R@10 x{ratio['recall@10']}  MRR x{ratio['mrr']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"misses (ours): {len(ours_r['misses'])}; written {args.out}")
    db.dispose()


if __name__ == "__main__":
    main()
