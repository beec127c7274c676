"""Search benchmark: our code search beside SQLite FTS5 and rapidfuzz, per query style.

    .venv/bin/python bench/search.py [--database URL] [--no-rapidfuzz]

Imports every shipped code set into a fresh database (timed: the "full
import" figure), checks every expected answer against the shipped data --
a code the data lacks, or one a coder can no longer report today (deleted,
or now a header: "G35" since FY2026, whose "unspecified" is G35.D), is
dropped and listed in the results; a query left without an answer stops
the run -- then runs every query through:

- ``ours``: :func:`mailbot.codes.search.search` over the full index;
- ``fts5_bm25``: SQLite FTS5, bm25 over the descriptors of the same codes,
  query words OR-ed (AND finds nothing for most lay queries);
- ``rapidfuzz_token_set``: rapidfuzz ``token_set_ratio`` against every
  descriptor (slow; ``--no-rapidfuzz`` skips it).

Query sets: ``search_queries.csv`` and ``search_queries_holdout.csv`` were
written by hand (lay words, abbreviations, drugs);
``search_queries_generated.csv`` is written from the shipped data by
``bench/search_cases.py`` (formal titles, coders' shorthand, typos,
laterality / encounter detail, HCPCS descriptors) before tuning.  Each query
has a style; about 30% of all queries, chosen by a hash of the query text
(:func:`is_holdout`), form the hold-out part: it is scored but its misses
are never printed or written, so tuning cannot look at them.

The ``icd9`` style (``search_queries_icd9.csv`` / ``search_queries_icd9_holdout.csv``,
written by ``bench/build_icd9_set.py``) is the team's kind of set: an
ICD-9-CM long title -> the ICD-10-CM code the CMS GEMs map it to one-to-one
and exactly, searched with the ICD-10-CM filter (every engine).  Its split is
by file, made before any search ran on it: one file is the tuning half, the
other the hold-out half.  It is reported on its own rows and left out of
"all", which stays the six styles above.

The ``common`` style (``search_queries_common.csv``) is everyday symptom and
condition phrases as patients say them ("nose bleeds", "lazy eye", "fainting
spells"), written by hand with the Alphabetic Index's answer for each.  Its
results were seen while the lay-term rule was written, so all of it is tuning;
``search_queries_common_holdout.csv`` (50 more, written and committed after the
rule was final and before any search ran on them) is its hold-out.  Both are
reported on their own rows and left out of "all".

An expected entry ending in ``*`` accepts any code under that prefix.
Prints recall@1 / @10 and p95 latency per part and style for each engine;
writes ``bench/results/search.json`` (tuning misses only).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import hashlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rapidfuzz import fuzz, process  # noqa: E402

import mailbot.models  # noqa: E402,F401
from mailbot.codes import index as index_mod  # noqa: E402
from mailbot.codes import search as search_mod  # noqa: E402
from mailbot.codes.importers import import_sets  # noqa: E402
from mailbot.db import Database  # noqa: E402


STYLES = ("formal", "abbrev", "lay", "typo", "detail", "hcpcs", "icd9", "common")
# styles "all" sums up (icd9 and common are sets of their own, split by file)
ALL_STYLES = ("formal", "abbrev", "lay", "typo", "detail", "hcpcs")
# files whose split is the file itself, not the hash of the query
FILE_PART = {"search_queries_icd9.csv": False, "search_queries_icd9_holdout.csv": True,
             "search_queries_common.csv": False, "search_queries_common_holdout.csv": True}
HOLDOUT_SHARE = 3  # of 10: queries whose hash lands here are the hold-out part
# the hand-written sets' "note" column -> style (their HCPCS rows are the hcpcs style)
_NOTE_STYLE = {"abbrev": "abbrev", "coder": "abbrev", "drug": "hcpcs"}


def style_of(row: dict) -> str:
    if row.get("style"):
        return row["style"]
    if row["system"] == "hcpcs":
        return "hcpcs"
    return _NOTE_STYLE.get(row.get("note", "").split(" ")[0], "lay")


def is_holdout(query: str) -> bool:
    """About 30% of the queries, fixed by a hash of the text (not by file or order)."""
    key = " ".join(query.lower().split()).encode()
    return int(hashlib.sha1(key).hexdigest()[:8], 16) % 10 < HOLDOUT_SHARE


def load_queries(paths: list[Path]) -> list[dict]:
    out = []
    for path in paths:
        part = FILE_PART.get(path.name)
        with open(path, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                out.append({"query": r["query"], "expected": r["expected"].split("|"), "system": r["system"],
                            "style": style_of(r), "filter": r.get("filter") or None,
                            "holdout": is_holdout(r["query"]) if part is None else part})
    return out


QUERY_FILES = ("search_queries.csv", "search_queries_holdout.csv", "search_queries_generated.csv",
               "search_queries_icd9.csv", "search_queries_icd9_holdout.csv", "search_queries_common.csv",
               "search_queries_common_holdout.csv")


def matches(code: str, expected: list[str]) -> bool:
    return any(code.startswith(e[:-1]) if e.endswith("*") else code == e for e in expected)


def evaluate(name: str, run, queries: list[dict], keep_misses: bool = True) -> dict:
    ranks, latencies, misses = [], [], []
    for q in queries:
        start = time.perf_counter()
        codes = run(q)
        latencies.append((time.perf_counter() - start) * 1000)
        rank = next((i + 1 for i, c in enumerate(codes[:10]) if matches(c, q["expected"])), None)
        ranks.append(rank)
        q.setdefault("ranks", {})[name] = rank
        q.setdefault("ms", {})[name] = latencies[-1]
        if rank != 1 and keep_misses:
            misses.append({"query": q["query"], "style": q["style"], "expected": q["expected"][:4],
                           "rank": rank, "got": codes[:3]})
    return summary(name, ranks, latencies) | ({"misses": misses} if keep_misses else {})


def summary(name: str, ranks: list, latencies: list) -> dict:
    n = len(ranks) or 1
    lat = sorted(latencies) or [0.0]
    return {
        "engine": name,
        "queries": len(ranks),
        "recall@1": round(sum(r == 1 for r in ranks) / n, 3),
        "recall@10": round(sum(r is not None for r in ranks) / n, 3),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 3),
        "latency_ms_p50": round(statistics.median(lat), 2),
        "latency_ms_p95": round(lat[int(0.95 * (len(lat) - 1))], 2),
    }


def by_style(queries: list[dict], engines: list[str]) -> dict:
    table = {}
    for part in ("tuning", "holdout"):
        for style in (*STYLES, "all"):
            qs = [q for q in queries if q["holdout"] == (part == "holdout")
                  and (q["style"] == style or (style == "all" and q["style"] in ALL_STYLES))]
            table[f"{part}/{style}"] = {e: summary(e, [q["ranks"][e] for q in qs], [q["ms"][e] for q in qs])
                                        for e in engines if qs and e in qs[0]["ranks"]}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--queries", nargs="*", default=[str(ROOT / "bench" / name) for name in QUERY_FILES])
    parser.add_argument("--no-rapidfuzz", action="store_true", help="skip the slow rapidfuzz baseline")
    parser.add_argument("--styles", nargs="*", choices=STYLES, help="only these styles (default: all)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "search.json"))
    args = parser.parse_args()
    queries = load_queries([Path(p) for p in args.queries])
    if args.styles:
        queries = [q for q in queries if q["style"] in args.styles]

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
        known = sorted(idx.codes)

        _valid, billable_today = idx.valid_on(date.today())

        def exists(e: str) -> bool:
            if not e.endswith("*"):
                return e in idx.by_code
            i = bisect.bisect_left(known, e[:-1])
            return i < len(known) and known[i].startswith(e[:-1])

        def stale(e: str) -> bool:
            """An exact answer the shipped sets no longer let a coder report
            today (deleted, or now a header): search is right not to rank it
            first, so it is no answer."""
            return not e.endswith("*") and e in idx.by_code and not billable_today[idx.by_code[e]]

        # a hand-written answer may list codes the shipped data lacks (CPT, ended
        # HCPCS) or that are no longer reportable; they are dropped, and a query
        # with no answer left stops the run
        dropped = [f"{q['query']!r}: {e}" for q in queries for e in q["expected"] if not exists(e)]
        retired = [f"{q['query']!r}: {e}" for q in queries for e in q["expected"] if stale(e)]
        for q in queries:
            q["expected"] = [e for e in q["expected"] if exists(e) and not stale(e)]
        bad = [q["query"] for q in queries if not q["expected"]]
        if bad:
            sys.exit("queries without any expected code in the shipped data:\n" + "\n".join(bad))

        def ours(q: dict) -> list[str]:
            return [h.code for h in search_mod.search(session, q["query"], system=q["filter"], limit=10)]

        fts = sqlite3.connect(":memory:")
        fts.execute("CREATE VIRTUAL TABLE doc USING fts5(code UNINDEXED, system UNINDEXED, title)")
        fts.executemany("INSERT INTO doc VALUES (?, ?, ?)", list(zip(idx.codes, idx.systems, idx.titles)))
        in_system = {s: [i for i, x in enumerate(idx.systems) if x == s] for s in set(idx.systems)}

        def fts5(q: dict) -> list[str]:
            terms = index_mod.words(q["query"])
            if not terms:
                return []
            match = " OR ".join(f'"{t}"' for t in terms)
            if q["filter"]:
                sql = "SELECT code FROM doc WHERE doc MATCH ? AND system = ? ORDER BY bm25(doc) LIMIT 10"
                return [r[0] for r in fts.execute(sql, (match, q["filter"]))]
            return [r[0] for r in fts.execute("SELECT code FROM doc WHERE doc MATCH ? ORDER BY bm25(doc) LIMIT 10",
                                              (match,))]

        def fuzzy(q: dict) -> list[str]:
            ids = in_system.get(q["filter"]) if q["filter"] else None
            choices = idx.titles if ids is None else {i: idx.titles[i] for i in ids}
            return [idx.codes[i] for _t, _s, i in process.extract(q["query"], choices, scorer=fuzz.token_set_ratio,
                                                                 limit=10)]

        engines = [("ours", ours), ("fts5_bm25", fts5)] + ([] if args.no_rapidfuzz else [("rapidfuzz_token_set",
                                                                                           fuzzy)])
        tuning = [q for q in queries if not q["holdout"]]
        holdout = [q for q in queries if q["holdout"]]
        overall = []
        for name, run in engines:
            overall.append(evaluate(name, run, tuning))
            # the hold-out part is scored but its misses are never written or printed
            evaluate(name, run, holdout, keep_misses=False)
        table = by_style(queries, [name for name, _ in engines])

    report = {
        "database": db.dialect,
        "queries": len(queries),
        "tuning_queries": len(tuning),
        "holdout_queries": len(holdout),
        "full_import_seconds": round(import_seconds, 1),
        "imported_rows": rows,
        "index_build_seconds": round(build_seconds, 2),
        "indexed_codes": idx.size,
        "by_style": table,
        "answers_dropped_not_in_data": dropped,
        "answers_dropped_not_reportable_today": retired,
        "misses_tuning": overall[0]["misses"],
    }
    print(f"full import: {import_seconds:.1f}s ({rows} rows, {db.dialect}); index build {build_seconds:.2f}s "
          f"over {idx.size} codes; {len(queries)} queries ({len(tuning)} tuning, {len(holdout)} hold-out)")
    print(f"{'part/style':16} {'n':>4} " + " ".join(f"{name[:10]:>10} R@1 R@10 p95ms" for name, _ in engines))
    for key, row in table.items():
        if not row:
            continue
        n = next(iter(row.values()))["queries"]
        cells = " ".join(f"{'':>10} {r['recall@1']:.2f} {r['recall@10']:.2f} {r['latency_ms_p95']:5.1f}"
                         for r in row.values())
        print(f"{key:16} {n:4} {cells}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"tuning misses (ours, rank != 1): {len(overall[0]['misses'])}; written {args.out}")
    db.dispose()


if __name__ == "__main__":
    main()
