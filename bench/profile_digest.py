"""Where a digest email's milliseconds go: the batch path in one process.

    .venv/bin/python bench/profile_digest.py [--subs 4000] [--sink lean|aiosmtpd] [--cprofile out.prof]

A scratch PostgreSQL database (``digest_profile_<pid>``, dropped after) gets
the subscriptions and 5,000 open jobs of ``bench/digest.py``; a relay sink
runs in its own process.  Then, in this process and thread, every due
subscription is claimed (``schedule.claim_due``, one ``now`` as the
scheduler pass uses), the runs go through ``digest_batch.send_digests`` and
the emails through ``delivery.deliver_batch``.  The first two batches warm
the job index and the card cache and are not counted; for the rest it
prints wall and CPU (``time.thread_time``) per email for each stage, and
with ``--cprofile`` writes a profile of them.  A diagnostic, not a
benchmark: no baseline, no ratio (``digest_e2e.py`` is the benchmark).
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import digest as scale  # noqa: E402
from digest_e2e import SINKS, _populate  # noqa: E402
from load import PG_ADMIN, free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subs", type=int, default=4_000)
    parser.add_argument("--sink", choices=sorted(SINKS), default="lean")
    parser.add_argument("--cprofile", type=Path)
    args = parser.parse_args()

    from sqlalchemy import create_engine, func, select, text, update

    name = f"digest_profile_{os.getpid()}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    mp = multiprocessing.get_context("fork")
    count, distinct, ready = mp.Value("l", 0), mp.Value("l", 0), mp.Event()
    port = free_port()
    sink = mp.Process(target=SINKS[args.sink], args=(port, count, distinct, ready), daemon=True)
    try:
        from mailbot.config import load_settings
        from mailbot.context import Context, configure
        from mailbot.jobs import digest_batch, schedule
        from mailbot.models.base import utcnow
        from mailbot.models.jobs import Subscription
        from mailbot.models.mail import OutboundMessage
        from mailbot.services import delivery

        scale.JOBS[:] = scale.make_jobs(5_000)
        _populate(url, args.subs, scale.JOBS, utcnow())
        sink.start()
        ready.wait(30)
        settings = load_settings(path=None, environ={}, overrides={
            "database.url": url, "relay.host": "127.0.0.1", "relay.port": str(port),
            "service.var_dir": f"/tmp/{name}", "jobs.link_secret": "bench-link-secret-" + "x" * 30})
        ctx = configure(Context(settings))
        with ctx.db.session() as session:
            session.exec(update(Subscription).values(next_due_at=utcnow() - timedelta(minutes=1)))
        stages: dict[str, list[float]] = {}

        def timed(stage: str, fn, *fn_args):
            wall, cpu = time.perf_counter(), time.thread_time()
            result = fn(*fn_args)
            totals = stages.setdefault(stage, [0.0, 0.0])
            totals[0] += time.perf_counter() - wall
            totals[1] += time.thread_time() - cpu
            return result

        def claim(now):
            with ctx.db.session() as session:
                return schedule.claim_due(session, settings, now=now, limit=500)

        now, run_ids = utcnow(), []
        while ids := timed("claim", claim, now):
            run_ids += ids
        batches = digest_batch.batches(run_ids)
        for poke in batches[:2]:          # warm-up: job index and cards
            for out in digest_batch.send_digests(ctx, poke.id):
                delivery.deliver_batch(ctx, out.id)
        profile = cProfile.Profile() if args.cprofile else None
        if profile:
            profile.enable()
        outs = [out for poke in batches[2:] for out in timed("send_digests", digest_batch.send_digests, ctx, poke.id)
                if out.actor == "deliver_batch"]
        for out in outs:
            timed("deliver_batch", delivery.deliver_batch, ctx, out.id)
        if profile:
            profile.disable()
            profile.dump_stats(args.cprofile)
        emails = sum(len(out.id) for out in outs)
        with ctx.db.read() as session:
            queued = session.execute(select(func.count()).select_from(OutboundMessage)).scalar_one()
        deadline = time.monotonic() + 30
        while count.value < queued and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"{args.subs} subscriptions, {len(run_ids)} runs, {queued} emails ({emails} timed), sink accepted "
              f"{count.value} ({distinct.value} distinct); load {os.getloadavg()[0]:.2f}")
        for stage, (wall, cpu) in stages.items():
            per = emails if stage != "claim" else queued
            print(f"  {stage:14s} wall {1000 * wall / per:6.3f} ms/email   CPU {1000 * cpu / per:6.3f} ms/email")
        ctx.db.dispose()
    finally:
        if sink.is_alive():
            sink.terminate()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
