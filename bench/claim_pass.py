"""The digest scheduler's claim pass alone, at scale, against the tree before.

    .venv/bin/python bench/claim_pass.py [--subs 100000] [--compare-with DIR] [--batch 500]

For each tree (``--compare-with DIR`` first, then this one) a fresh scratch
PostgreSQL database (``claim_pass_<pid>_<n>``, dropped after) gets the
subscriptions of ``digest_e2e.py`` (bulk-inserted, so without planner
statistics, as after an import), all made due; then a process running that
tree claims every due subscription with ``schedule.claim_due`` in batches
of ``--batch``, with one ``now``, as ``workflows.scheduler.tick`` does (no
pokes: the queue is not part of this).  It prints, per tree, the wall time
of the pass, the CPU of the claiming process (``time.thread_time``) and of
its PostgreSQL backend (/proc), and checks exactly once: one run per
subscriber, every subscription moved to its next slot.  A diagnostic of
one stage; ``digest_e2e.py`` is the end-to-end benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest_e2e import _cpu_s, _populate  # noqa: E402
from load import PG_ADMIN  # noqa: E402

# Run by the tree under test: connect, say the backend's pid, claim on "go".
CLAIM = """
import json, sys, time
from sqlalchemy import text
from mailbot.config import load_settings
from mailbot.db import Database
from mailbot.jobs import schedule
from mailbot.models.base import utcnow
url, batch = sys.argv[1], int(sys.argv[2])
settings = load_settings(path=None, environ={}, overrides={"database.url": url, "jobs.link_secret": "bench-link-secret-" + "x" * 30})
db = Database(url)
with db.engine.connect() as conn:
    print(conn.execute(text("SELECT pg_backend_pid()")).scalar_one(), flush=True)
sys.stdin.readline()
now, runs, batches = utcnow(), 0, 0
wall, cpu = time.perf_counter(), time.thread_time()
while True:
    with db.session() as session:
        ids = schedule.claim_due(session, settings, now, limit=batch)
    if not ids:
        break
    runs, batches = runs + len(ids), batches + 1
print(json.dumps({"runs": runs, "batches": batches, "wall_s": time.perf_counter() - wall,
                  "cpu_s": time.thread_time() - cpu}), flush=True)
"""


def _one(tree: Path, n_subs: int, batch: int, name: str) -> dict:
    from sqlalchemy import create_engine, text

    from mailbot.models.base import utcnow

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        import digest as scale

        subscribers = _populate(url, n_subs, scale.make_jobs(50), utcnow())
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE subscription SET next_due_at = :due"), {"due": utcnow() - timedelta(minutes=1)})
        env = dict(os.environ, PYTHONPATH=str(tree))
        child = subprocess.Popen([str(tree / ".venv" / "bin" / "python"), "-c", CLAIM, url, str(batch)], cwd=tree,
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        backend = int(child.stdout.readline())
        pg_cpu = _cpu_s(backend)
        load = os.getloadavg()[0]
        child.stdin.write("go\n")
        child.stdin.flush()
        result = json.loads(child.stdout.readline())
        pg_cpu = _cpu_s(backend) - pg_cpu
        child.wait(30)
        with engine.connect() as conn:
            runs = conn.execute(text("SELECT count(*), count(DISTINCT subscriber_id) FROM digest_run")).one()
            sections = conn.execute(text("SELECT sum(json_array_length(sections)) FROM digest_run")).scalar_one()
            left = conn.execute(text("SELECT count(*) FROM subscription WHERE next_due_at <= now()")).scalar_one()
        engine.dispose()
        return {"tree": str(tree), "subscriptions": n_subs, "subscribers": subscribers, "batch": batch,
                "runs": result["runs"], "batches": result["batches"], "wall_s": round(result["wall_s"], 2),
                "ms_per_subscription": round(1000 * result["wall_s"] / n_subs, 3),
                "cpu_ms_per_subscription": {"claimer": round(1000 * result["cpu_s"] / n_subs, 4),
                                            "postgres": round(1000 * pg_cpu / n_subs, 4)},
                "exactly_once": runs[0] == runs[1] == subscribers == result["runs"] and sections == n_subs
                and left == 0,
                "load_average_at_start": load}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subs", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--compare-with", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "claim_pass.json")
    args = parser.parse_args()
    trees = ([args.compare_with.resolve()] if args.compare_with else []) + [ROOT]
    results = []
    for n, tree in enumerate(trees):
        results.append(_one(tree, args.subs, args.batch, f"claim_pass_{os.getpid()}_{n}"))
        print(json.dumps(results[-1]), flush=True)
    summary = {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": results,
               "load_average_at_end": os.getloadavg()[0]}
    if len(results) == 2:
        summary["wall_ratio"] = round(results[1]["wall_s"] / results[0]["wall_s"], 3)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))


if __name__ == "__main__":
    main()
