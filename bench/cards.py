"""Code cards: the in-memory knowledge vs the per-card ORM queries it replaced.

    .venv/bin/python bench/cards.py [--database URL] [--codes 400] [--rounds 3]

Issue 16 found ~40% of a LOOKUP reply's CPU in ``lookup._icd_context``
running ORM queries for every card (the code's rows, its ancestors' notes,
its children).  Issue 12 moved those facts into :mod:`mailbot.codes.knowledge`,
loaded once per imported version set.  Both paths run here, in the same
process on the same database:

- ``old``: a frozen copy (below) of the pre-issue-12 per-card queries:
  the code's rows, its ancestors valid on the date, its children valid on
  the date -- three ORM queries per ICD-10-CM card;
- ``new``: :func:`mailbot.codes.lookup.lookup` on the warm knowledge (full
  cards: verdict, fiscal year, notes, parent, children, successors).

The codes are a fixed sample of the shipped ICD-10-CM codes (every n-th code,
headers included) on three dates of service.  Also measured: the full import
of the shipped sets (``mailbot codes import`` path; the issue's limit is 90 s),
the one-off knowledge load, and its memory (tracemalloc).  Writes
``bench/results/cards.json``; the figure that matters is ``old_over_new``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import or_, select  # noqa: E402

from mailbot.models.codes import CodeEntry  # noqa: E402

DATES = [date(2021, 6, 1), date(2024, 3, 15), date(2026, 11, 2)]
INHERITED_KEYS = ("includes", "excludes1", "excludes2", "code_first", "use_additional", "code_also",
                  "seventh_characters", "notes")


def old_card(session, code: str, on: date) -> dict:
    """The pre-issue-12 path for one ICD-10-CM card (frozen copy, queries only)."""
    rows = list(session.execute(select(CodeEntry).where(CodeEntry.system == "icd10cm", CodeEntry.code == code)
                                .order_by(CodeEntry.valid_from)).scalars())
    if not rows:
        return {}
    current = next((r for r in rows if r.valid_from <= on and (r.valid_to is None or r.valid_to >= on)), None)
    row = current or rows[-1]
    card = {"code": code, "title": row.title, "billable": row.billable, "notes": dict(row.notes or {}),
            "inherited": [], "children": []}
    bare = code.replace(".", "")
    ancestors = [a for a in [bare[:3]] + [f"{bare[:3]}.{bare[3:i]}" for i in range(4, len(bare))] if a != code]
    if ancestors:
        found = {r.code: r for r in session.execute(select(CodeEntry).where(
            CodeEntry.system == "icd10cm", CodeEntry.code.in_(ancestors), CodeEntry.valid_from <= on,
            or_(CodeEntry.valid_to.is_(None), CodeEntry.valid_to >= on))).scalars()}
        for a in ancestors:
            r = found.get(a)
            if r is not None:
                inherited = {k: v for k, v in (r.notes or {}).items() if k in INHERITED_KEYS}
                if inherited:
                    card["inherited"].append({"code": a, "notes": inherited})
    children = session.execute(select(CodeEntry).where(
        CodeEntry.system == "icd10cm", CodeEntry.parent == code, CodeEntry.valid_from <= on,
        or_(CodeEntry.valid_to.is_(None), CodeEntry.valid_to >= on)).order_by(CodeEntry.code)).scalars()
    card["children"] = [{"code": c.code, "title": c.title, "billable": c.billable} for c in children]
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="an already imported database URL (default: import into a temp SQLite)")
    parser.add_argument("--codes", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from mailbot.codes import knowledge
    from mailbot.codes.importers import import_sets
    from mailbot.codes.lookup import lookup
    from mailbot.db import Database

    tmp = tempfile.TemporaryDirectory()
    url = args.database or f"sqlite:///{tmp.name}/bench.db"
    db = Database(url)
    import_seconds = None
    if not args.database:
        db.upgrade()
        start = time.perf_counter()
        import_sets(db, source=ROOT / "data" / "codesets")
        import_seconds = round(time.perf_counter() - start, 1)
    with db.read() as session:
        every = sorted(session.execute(select(CodeEntry.code).where(CodeEntry.system == "icd10cm").distinct())
                       .scalars())
        sample = every[:: max(1, len(every) // args.codes)][: args.codes]
        knowledge.invalidate()
        tracemalloc.start()
        start = time.perf_counter()
        knowledge.get_knowledge(session)
        load_seconds = time.perf_counter() - start
        knowledge_mb = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        timings = {"old": [], "new": []}
        for _ in range(args.rounds):
            for name in ("old", "new"):
                start = time.perf_counter()
                for on in DATES:
                    if name == "old":
                        for code in sample:
                            old_card(session, code, on)
                    else:
                        lookup(session, sample, on)
                timings[name].append(time.perf_counter() - start)
    cards = len(sample) * len(DATES)
    old, new = min(timings["old"]), min(timings["new"])
    result = {
        "cards": cards,
        "old_ms_per_card": round(old / cards * 1000, 3),
        "new_ms_per_card": round(new / cards * 1000, 3),
        "old_over_new": round(old / new, 1),
        "knowledge_load_seconds": round(load_seconds, 2),
        "knowledge_traced_mb": round(knowledge_mb, 1),
        "full_import_seconds": import_seconds,
        "database": db.engine.dialect.name,
        "baseline": "same run: frozen copy of the pre-issue-12 per-card ORM queries (rows, ancestors, children)",
        "note": "new = full cards (verdict, fiscal year, successors, notes, parent, children); old = queries only",
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / "cards.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
