"""Job digests end to end: due subscriptions -> claimed -> matched, rendered,
queued -> handed to an SMTP relay sink, by real ``mailbot worker`` processes.

    .venv/bin/python bench/digest_e2e.py [--subs 100000] [--jobs 5000] [--workers 2] [--baseline-subs 2000]

Set-up: PostgreSQL + Redis; ``--subs`` subscriptions (1.14 per subscriber,
criteria and 5,000 open jobs as in ``bench/digest.py``: worst case, every
job new, at most 50 listed per email) inserted first, not yet due; an
aiosmtpd sink in its own process counts what it accepts (the relay); the
worker processes start and settle.  Timed: the subscriptions are made due
and one scheduler pass (``workflows.scheduler.tick``) claims them and pokes
the workers; the clock stops when the sink has accepted one email per run.
Then the database is checked: every run ``sent`` with exactly one outbound
row, every outbound row ``sent``, no duplicate at the sink.

Baselines, same run:

- the bare sink: the same number of connections blasting digest-sized
  messages at the same sink (``--sink-sample`` of them), i.e. the floor any
  sender meets on this machine, extrapolated to the run's email count;
- the one-run path this work replaced (``send_digest`` per run, then
  ``send_outbound`` per email) on ``--baseline-subs`` subscriptions,
  extrapolated linearly to ``--subs``.

1M is extrapolated linearly from the measured rate (the work per run is
independent once each worker has its job index and card cache).  Writes
``bench/results/digest_e2e.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import digest as scale  # noqa: E402  (bench/digest.py: the same jobs, criteria and subscribers)
from load import MAILBOT, REDIS_URL, _database, env_for, free_port  # noqa: E402

GOAL_S_100K = 120


def _sink(port: int, count, ready) -> None:
    """The relay: accept and count (in its own process, as a relay would be)."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            with count.get_lock():
                count.value += 1
            return "250 2.0.0 queued"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, data_size_limit=0)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def _populate(db_url: str, n_subs: int, jobs, now) -> int:
    """Jobs, subscribers and subscriptions (due far in the future); returns the subscriber count."""
    from sqlalchemy import insert

    from mailbot.db import Database
    from mailbot.models.jobs import Job, Subscriber, Subscription

    database = Database(db_url)
    database.upgrade()
    later = now + timedelta(days=365)
    subscribers = sorted({scale.subscriber_of(i) for i in range(1, n_subs + 1)})
    with database.engine.begin() as conn:
        rows = []
        for job in jobs:
            row = job.model_dump()
            row.update(opened_at=now - timedelta(hours=1), updated_at=now, posted_at=now - timedelta(hours=2))
            rows.append(row)
        conn.execute(insert(Job.__table__), rows)
        for start in range(0, len(subscribers), 20_000):
            conn.execute(insert(Subscriber.__table__), [
                {"id": i, "email": f"user{i}@example.org", "status": "active", "bounce_count": 0,
                 "created_at": now, "updated_at": now} for i in subscribers[start:start + 20_000]])
        for start in range(1, n_subs + 1, 20_000):
            conn.execute(insert(Subscription.__table__), [{
                "id": i, "subscriber_id": scale.subscriber_of(i), "kind": "jobs", "criteria": scale.make_criteria(i),
                "summary": "bench", "frequency": "daily", "status": "active", "next_due_at": later,
                "confirm_token": "t", "created_at": now, "updated_at": now}
                for i in range(start, min(n_subs + 1, start + 20_000))])
    database.dispose()
    return len(subscribers)


def _run(db_url: str, n_subs: int, n_jobs: int, workers: int, workdir: Path, one_run_path: bool) -> dict:
    """Populate, start the sink and the workers, then time one scheduler pass to the last email."""
    from mailbot.config import load_settings
    from mailbot.context import Context, configure
    from mailbot.models.base import utcnow

    now = utcnow()
    jobs = scale.JOBS if len(scale.JOBS) == n_jobs else scale.make_jobs(n_jobs)
    subscribers = _populate(db_url, n_subs, jobs, now)
    port = free_port()
    ctx_mp = multiprocessing.get_context("fork")
    count, ready = ctx_mp.Value("l", 0), ctx_mp.Event()
    sink = ctx_mp.Process(target=_sink, args=(port, count, ready), daemon=True)
    sink.start()
    ready.wait(30)
    namespace = f"mailbot-digest-e2e-{uuid.uuid4().hex[:8]}"
    values = {"database.url": db_url, "broker.url": REDIS_URL, "broker.namespace": namespace,
              "relay.host": "127.0.0.1", "relay.port": port, "service.var_dir": workdir / "var",
              "jobs.link_secret": "bench-link-secret-" + "x" * 30, "web.session_secret": "bench-" + "s" * 40}
    settings = load_settings(path=None, environ={}, overrides={k: str(v) for k, v in values.items()})
    ctx = configure(Context(settings))
    import workflows.broker

    broker = workflows.broker.install(settings)
    import workflows.actors  # noqa: F401
    from sqlalchemy import func, select, update

    from mailbot.models.jobs import DigestRun, Subscription
    from mailbot.models.mail import OutboundMessage
    from workflows import scheduler

    procs = []
    try:
        for n in range(workers):
            out = (workdir / f"worker{n}.log").open("ab")
            procs.append((subprocess.Popen([MAILBOT, "worker"], cwd=workdir, env=env_for(values), stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True), out))
        time.sleep(8)                      # the workers import, connect and run their first (empty) pass
        t0 = time.perf_counter()
        with ctx.db.session() as s:
            s.exec(update(Subscription).values(next_due_at=utcnow() - timedelta(minutes=1)))
        if one_run_path:                   # the path this work replaced: one send_digest poke per run
            from mailbot.jobs import schedule
            from workflows.actors import dispatch
            from mailbot.services import Poke

            while True:
                with ctx.db.session() as s:
                    ids = schedule.claim_due(s, settings, limit=500)
                if not ids:
                    break
                dispatch([Poke("send_digest", i) for i in ids])
        else:
            scheduler.tick(ctx)
        claimed_s = time.perf_counter() - t0
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            # Done when no run is pending and the sink has every queued email.
            with ctx.db.read() as s:
                pending = s.execute(select(func.count()).select_from(DigestRun)
                                    .where(DigestRun.state == "pending")).scalar_one()
                emails = s.execute(select(func.count()).select_from(OutboundMessage)).scalar_one()
            if not pending and count.value >= emails:
                break
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        time.sleep(2)                      # late duplicates would arrive now
        with ctx.db.read() as s:
            states = dict(s.execute(select(DigestRun.state, func.count()).group_by(DigestRun.state)).all())
            outbound = dict(s.execute(select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)).all())
            linked = s.execute(select(func.count(func.distinct(DigestRun.outbound_id)))).scalar_one()
            runs = sum(states.values())
    finally:
        for proc, out in procs:
            proc.terminate()
        for proc, out in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            out.close()
        sink.terminate()
        for key in broker.client.scan_iter(f"{namespace}*"):
            broker.client.delete(key)
        ctx.db.dispose()
    emails = states.get("sent", 0)
    ok = (set(states) <= {"sent", "skipped"} and outbound == {"sent": emails} and linked == emails
          and count.value == emails)
    return {"subscriptions": n_subs, "subscribers": subscribers, "runs": runs, "emails": emails,
            "sink_accepted": count.value, "wall_s": round(wall, 1), "claim_s": round(claimed_s, 1),
            "emails_per_s": round(emails / wall, 1),
            "run_states": states, "outbound_states": outbound, "exactly_once": ok,
            "path": "send_digest + send_outbound per email" if one_run_path else "send_digests + deliver_batch"}


def _blast_client(args: tuple[int, int, bytes]) -> None:
    port, k, body = args
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(k):
            smtp.sendmail("bounces@example.org", ["user@example.org"], body)


def _sink_blast(n: int, connections: int, size: int) -> float:
    """Bare sink: msgs/s of ``connections`` clients sending ``n`` messages of ``size`` bytes."""
    port = free_port()
    ctx_mp = multiprocessing.get_context("fork")
    count, ready = ctx_mp.Value("l", 0), ctx_mp.Event()
    sink = ctx_mp.Process(target=_sink, args=(port, count, ready), daemon=True)
    sink.start()
    ready.wait(30)
    line = b"<td style=3D\"padding:4px\">Remote Coder, Employer 12 Health, Austin TX, CPC</td>=\r\n"
    body = b"Subject: digest\r\nMessage-ID: <x@example.org>\r\n\r\n" + line * (size // len(line))
    t0 = time.perf_counter()
    with ctx_mp.Pool(connections) as pool:
        pool.map(_blast_client, [(port, n // connections, body)] * connections)
    rate = (n // connections * connections) / (time.perf_counter() - t0)
    sink.terminate()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subs", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-subs", type=int, default=2_000, help="0: skip the one-run-path baseline")
    parser.add_argument("--sink-sample", type=int, default=3_000)
    args = parser.parse_args()
    scale.JOBS[:] = scale.make_jobs(args.jobs)
    tmp = Path(tempfile.mkdtemp(prefix="bench-digest-e2e-"))
    load = round(os.getloadavg()[0], 2)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
               "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "load_average_at_start": load, "workers": args.workers, "open_jobs": args.jobs,
               "goal_s_100k": GOAL_S_100K}

    def one(n: int, one_run: bool, label: str) -> dict:
        db_url, drop = _database(False, tmp)
        try:
            found = _run(db_url, n, args.jobs, args.workers, tmp / label, one_run)
        finally:
            drop()
        print(f"{label}: {found}", flush=True)
        return found

    (tmp / "ours").mkdir()
    ours = one(args.subs, False, "ours")
    results["ours"] = ours
    results["wall_s_100k_extrapolated"] = round(ours["wall_s"] * 100_000 / args.subs, 1)
    results["wall_s_1M_extrapolated"] = round(ours["wall_s"] * 1_000_000 / args.subs, 1)
    if args.baseline_subs:
        (tmp / "one-run").mkdir()
        base = one(args.baseline_subs, True, "one-run")
        results["one_run_path"] = base
        results["one_run_path_s_100k_extrapolated"] = round(base["wall_s"] * 100_000 / args.baseline_subs, 1)
        results["speedup_vs_one_run_path"] = round(results["one_run_path_s_100k_extrapolated"]
                                                   / results["wall_s_100k_extrapolated"], 2)
    if args.sink_sample:
        with_size = 27_000   # a worst-case digest (50 jobs) is ~27 KB on the wire
        rate = _sink_blast(args.sink_sample, args.workers, with_size)
        results["bare_sink_msgs_per_s"] = round(rate, 1)
        results["bare_sink_s_for_our_emails"] = round(ours["emails"] / rate, 1)
        results["ratio_to_bare_sink"] = round(ours["emails_per_s"] / rate, 2)
    results["meets_goal_100k"] = results["wall_s_100k_extrapolated"] <= GOAL_S_100K
    out = ROOT / "bench" / "results" / "digest_e2e.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, dict)}, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
