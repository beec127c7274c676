"""Where one automated reply's time goes, stage by stage, with SQL counts.

    .venv/bin/python bench/profile_reply.py [--sqlite | --pg] [--n 200] [--kind LOOKUP|HELP] [--cprofile out.prof]

Runs the real pipeline functions in this process, one message after another,
without a queue in between (the queue hops are measured by ``lookup.py``):
intake stores N requests, then for each message ``services.inbound.route_stored``
(route), ``commands.runner.run`` (answer + queue the reply; given the routed row
and parsed request as the ``process_inbound`` actor gives them) and
``services.delivery.deliver`` (hand it to an aiosmtpd relay sink on loopback).
Prints, per stage, the median and mean milliseconds, the mean CPU milliseconds of
this thread (least disturbed by a loaded machine) and the number of SQL statements
and transactions per message.  A diagnostic, not a goal-checking benchmark:
the figures it printed before and after the throughput work are in
``bench/README.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import event  # noqa: E402

LOOKUPS = ["50250 J1030 E11.22", "99213 E11.9 I10", "J1100 M17.11 20610", "N18.31 E11.22 99214",
           "S52.521A J0696 A0425", "G0439 Z00.00 99397", "E78.5 I25.10 93000"]


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 2.0.0 queued"


class Counter:
    """SQL statements and BEGINs seen by an engine."""

    def __init__(self) -> None:
        self.statements = 0
        self.begins = 0
        self.log: list[str] | None = None   # statements of one message, with --show-sql

    def attach(self, engine) -> None:
        event.listen(engine, "before_cursor_execute", self._stmt)
        event.listen(engine, "begin", self._begin)

    def _stmt(self, conn, cursor, statement, *args) -> None:
        self.statements += 1
        if self.log is not None:
            self.log.append("  " + " ".join(statement.split())[:160])

    def _begin(self, *args) -> None:
        self.begins += 1
        if self.log is not None:
            self.log.append("  BEGIN")


def request(i: int, kind: str, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Coder {i} <coder{i}@example.org>"
    msg["To"] = to
    msg["Subject"] = "HELP" if kind == "HELP" else "LOOKUP " + LOOKUPS[i % len(LOOKUPS)]
    msg["Message-ID"] = f"<prof.{uuid.uuid4().hex}@example.org>"
    msg["Date"] = "Wed, 02 Dec 2026 05:00:00 +0000"
    msg.set_content("thanks\n")
    return bytes(msg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (default: a SQLite file)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--kind", default="LOOKUP", choices=("LOOKUP", "HELP"))
    parser.add_argument("--cprofile", default="", help="write a cProfile of the measured loop here")
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of one message, stage by stage")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from lookup import database, free_port  # the LOOKUP benchmark's helpers

    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    db_url, drop_db = database(not args.pg, tmp)
    sink = Sink()
    port = free_port()
    relay = Controller(sink, hostname="127.0.0.1", port=port)
    relay.start()

    from mailbot.config import load_settings
    from mailbot.context import Context, configure

    settings = load_settings(path=None, environ={}, overrides={
        "database.url": db_url, "relay.host": "127.0.0.1", "relay.port": port,
        "service.var_dir": str(tmp / "var")})
    ctx = configure(Context(settings))
    from mailbot.codes.importers import ensure_loaded
    from mailbot.commands import runner
    from mailbot.mail import intake
    from mailbot.services import delivery, inbound

    ctx.db.upgrade()
    ensure_loaded(ctx)
    try:  # the in-memory code knowledge and facts a long-running worker has (built in the background there)
        from mailbot.codes import facts, knowledge
        with ctx.db.session() as session:
            facts.ensure(session, knowledge.get_knowledge(session))
    except ImportError:  # an older tree (--compare runs): it has no such cache
        pass
    to = settings.service_address(settings.service.lookup_address)
    counter = Counter()
    counter.attach(ctx.db.engine)
    if ctx.db.read_engine is not ctx.db.engine:
        counter.attach(ctx.db.read_engine)

    def stage(name: str) -> None:
        if counter.log is not None:
            counter.log.append(f"-- {name}")

    def one(i: int, times: dict, counts: dict, cpu: dict) -> None:
        raw = request(i, args.kind, to)   # the client's work: not counted in "store"
        marks = [(time.perf_counter(), counter.statements, counter.begins, time.thread_time())]
        stage("store")
        iid = intake.accept(ctx.db, raw, source="smtp",
                            envelope_from=f"coder{i}@example.org", envelope_to=[to])
        marks.append((time.perf_counter(), counter.statements, counter.begins, time.thread_time()))
        stage("route")
        if hasattr(inbound, "route_stored"):   # as the process_inbound actor does: the routed row handed on,
            routed = inbound.route_stored(ctx, iid)     # the reply queued with its first attempt claimed
            pokes, handed = routed.pokes, {"routed": routed.inbound, "request": routed.message, "claim": True}
        else:                                  # an older tree (--compare runs)
            pokes, handed = inbound.process(ctx, iid), {}
        assert [p.actor for p in pokes] == ["run_command"], pokes
        marks.append((time.perf_counter(), counter.statements, counter.begins, time.thread_time()))
        stage("answer")
        pokes = runner.run(ctx, iid, **handed)
        assert [p.actor for p in pokes] == ["send_outbound"], pokes
        marks.append((time.perf_counter(), counter.statements, counter.begins, time.thread_time()))
        stage("send")
        assert delivery.deliver(ctx, pokes[0].id, **({"claimed": True} if handed else {})) == "sent"
        marks.append((time.perf_counter(), counter.statements, counter.begins, time.thread_time()))
        for name, (a, b) in zip(("store", "route", "answer", "send"), zip(marks, marks[1:])):
            times.setdefault(name, []).append((b[0] - a[0]) * 1000)
            counts.setdefault(name, []).append((b[1] - a[1], b[2] - a[2]))
            cpu.setdefault(name, []).append((b[3] - a[3]) * 1000)

    try:
        for i in range(10):  # warm-up: caches, the search index, connections
            one(i, {}, {}, {})
        if args.show_sql:
            counter.log = []
            one(10**6, {}, {}, {})
            print("\n".join(counter.log))
            counter.log = None
        times: dict[str, list[float]] = {}
        counts: dict[str, list[tuple[int, int]]] = {}
        cpu: dict[str, list[float]] = {}  # this thread's CPU: the figure the machine's load disturbs least
        profiler = cProfile.Profile() if args.cprofile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        for i in range(10, 10 + args.n):
            one(i, times, counts, cpu)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        elapsed = time.perf_counter() - started
    finally:
        relay.stop()
        ctx.db.dispose()
        drop_db()
    print(f"{args.kind} x {args.n} on {'postgresql' if args.pg else 'sqlite'}: "
          f"{args.n / elapsed:.1f} replies/s in one thread ({elapsed * 1000 / args.n:.1f} ms each)")
    print(f"{'stage':8} {'p50 ms':>8} {'mean ms':>8} {'CPU ms':>8} {'SQL':>5} {'txns':>5}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for name in times:
        sql = statistics.mean(c[0] for c in counts[name])
        txn = statistics.mean(c[1] for c in counts[name])
        row = (statistics.mean(times[name]), statistics.mean(cpu[name]), sql, txn)
        totals = [t + r for t, r in zip(totals, row)]
        print(f"{name:8} {statistics.median(times[name]):8.2f} {row[0]:8.2f} {row[1]:8.2f} "
              f"{sql:5.1f} {txn:5.1f}")
    print(f"{'total':8} {'':8} {totals[0]:8.2f} {totals[1]:8.2f} {totals[2]:5.1f} {totals[3]:5.1f}")


if __name__ == "__main__":
    main()
