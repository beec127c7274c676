"""Profile code search on the tuning queries, and time it against another checkout in the same process.

    .venv/bin/python bench/profile_search.py [--db /tmp/search-profile.db] [--cprofile]
        [--compare-with /tmp/before] [--cold]

Imports the ICD-10-CM and HCPCS sets into a SQLite file once (reused on the
next run), then runs the *tuning* queries of ``bench/search.py`` (the hand
set and the generated set; the hold-out file is never read, and hold-out
queries of the other files are skipped) through :func:`mailbot.codes.search.search`.
Prints recall@1 / @10 and p50 / p95 per style.

``--compare-with DIR`` loads ``DIR/mailbot/codes/search.py`` (e.g. a
``git archive`` of an older commit) as a second engine over the same index
and times it query by query in the same process, so the ratio holds however
loaded the machine is.  ``--cold`` skips the warm-up pass (the per-document
memo and the token memo start empty, as after a rebuild).  ``--cprofile``
prints the 30 costliest functions of our engine.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mailbot.models  # noqa: E402,F401
from bench.search import STYLES, load_queries, matches  # noqa: E402
from mailbot.codes import index as index_mod  # noqa: E402
from mailbot.codes import search as search_mod  # noqa: E402
from mailbot.codes.importers import import_sets  # noqa: E402
from mailbot.db import Database  # noqa: E402


def other_engine(folder: Path):
    """The search module of another checkout, with its own per-document memo on the shared index."""
    source = (folder / "mailbot" / "codes" / "search.py").read_text(encoding="utf-8")
    # its memo must not meet ours: the two engines keep different facts per document
    source = source.replace("index.facts", "index.__dict__.setdefault('other_facts', {})")
    spec = importlib.util.spec_from_loader("search_other", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules["search_other"] = module
    exec(compile(source, str(folder / "search.py"), "exec"), module.__dict__)
    return module


def run(engine, session, queries: list[dict]) -> list[tuple[dict, int | None, float]]:
    out = []
    for q in queries:
        start = time.perf_counter()
        try:
            codes = [h.code for h in engine.search(session, q["query"], limit=10)]
        except engine.SearchError:
            codes = []
        ms = (time.perf_counter() - start) * 1000
        out.append((q, next((i + 1 for i, c in enumerate(codes) if matches(c, q["expected"])), None), ms))
    return out


def table(name: str, results) -> None:
    for style in (*STYLES, "all"):
        rows = [r for r in results if style in (r[0]["style"], "all")]
        if not rows:
            continue
        lat = sorted(r[2] for r in rows)
        print(f"{name:6} {style:7} n={len(rows):4}  R@1 {sum(r[1] == 1 for r in rows) / len(rows):.3f}  "
              f"R@10 {sum(r[1] is not None for r in rows) / len(rows):.3f}  "
              f"p50 {statistics.median(lat):6.1f} ms  p95 {lat[int(0.95 * (len(lat) - 1))]:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/search-profile.db")
    parser.add_argument("--compare-with", type=Path)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    fresh = not Path(args.db).exists()
    db = Database(f"sqlite:///{args.db}")
    if fresh:
        db.upgrade()
        import_sets(db, source=ROOT / "data" / "codesets", kinds=("icd10cm", "hcpcs"))
    queries = load_queries([ROOT / "bench" / "search_queries.csv", ROOT / "bench" / "search_queries_generated.csv"])
    queries = [q for q in queries if not q["holdout"]]
    other = other_engine(args.compare_with) if args.compare_with else None
    with db.read() as session:
        start = time.perf_counter()
        index = index_mod.get_index(session)
        print(f"index: {index.size} codes, built in {time.perf_counter() - start:.1f} s; {len(queries)} tuning queries")
        known = set(index.codes)
        for q in queries:
            q["expected"] = [e for e in q["expected"] if e.endswith("*") or e in known]
        if not args.cold:
            run(search_mod, session, queries)
            if other:
                run(other, session, queries)
        index.resolved.clear()
        profiler = cProfile.Profile() if args.cprofile else None
        if profiler:
            profiler.enable()
        ours = run(search_mod, session, queries)
        if profiler:
            profiler.disable()
        table("ours", ours)
        if other:
            theirs = run(other, session, queries)
            table("other", theirs)
            mine, old = sorted(r[2] for r in ours), sorted(r[2] for r in theirs)
            print(f"p50 ratio other/ours {statistics.median(old) / statistics.median(mine):.2f}; p95 ratio "
                  f"{old[int(0.95 * (len(old) - 1))] / mine[int(0.95 * (len(mine) - 1))]:.2f}")
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    db.dispose()


if __name__ == "__main__":
    main()
