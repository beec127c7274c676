"""Load: 10 concurrent SMTP clients, 10,000 mixed messages, 2 worker processes.

    .venv/bin/python bench/load.py [--messages 10000] [--clients 10] [--workers 2] [--threads 4] [--sqlite]

The scaled mode as an operator runs it: a ``mailbot smtpd`` process, two
``mailbot worker`` processes (dramatiq worker + reconciler + scheduler) on
Redis (its own namespace on 127.0.0.1:6379) and PostgreSQL (a fresh database
with the shipped code sets; ``--sqlite`` for a SQLite file), and an aiosmtpd
relay sink in this process that timestamps every reply.  The clients send a
mix of LOOKUPs (lookup@), questions (ask@, answered with an acknowledgement
and an offline draft for review) and SUBSCRIBEs (jobs@, answered with a
confirmation request), each from its own address so the daily cap never
applies.  A message refused with 4xx is retried by its client, as an MTA would.

Invariants checked (the run fails loudly if one breaks):
stored == acknowledged (every 250 is a row, no row without a 250); the queue
drains to 0; every request gets exactly one reply (lookups answered once,
questions acknowledged once, subscriptions confirmed once).

Figures: p50/p95 LOOKUP reply latency under load (from just before DATA to
the reply at the sink) against the same measured on the idle system in the
same run (the baseline), accepted messages/s, time to drain after the last
message, deepest queue seen.  Writes ``bench/results/load.json``.

:func:`run_load` is also used by ``tests/faults/test_load.py`` (a 300-message
version that CI runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.children import die_with_parent  # noqa: E402  (children end with this process)

REDIS_URL = os.environ.get("MAILBOT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("MAILBOT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MAILBOT = str(Path(sys.executable).with_name("mailbot"))
DOMAIN = "mailbot.localhost"
LOOKUPS = ["50250 J1030 E11.22", "99213 E11.9 I10", "J1100 M17.11 20610", "N18.31 E11.22 99214",
           "G0439 Z00.00 99397", "E78.5 I25.10 93000"]
# The mix, as kinds in a repeating cycle: half lookups, a quarter each of questions and subscriptions.
CYCLE = ["lookup", "question", "lookup", "subscribe", "lookup", "question", "lookup", "subscribe"]


@dataclass
class Sent:
    message_id: str
    kind: str
    sender: str = ""
    started: float = 0.0     # perf_counter just before DATA
    acked: bool = False
    tries: int = 0


class ReplySink:
    """The relay: records each reply's arrival by the request it answers (In-Reply-To)."""

    def __init__(self) -> None:
        self.replies: dict[str, list[tuple[float, str]]] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        now = time.perf_counter()
        headers = BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        key = str(headers.get("In-Reply-To", "") or "").strip()
        with self.lock:
            self.replies.setdefault(key, []).append((now, str(headers.get("X-Mailbot-Kind", ""))))
        return "250 2.0.0 queued"

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.replies.values())

    def snapshot(self) -> dict[str, list[tuple[float, str]]]:
        with self.lock:
            return {k: list(v) for k, v in self.replies.items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_message(n: int, kind: str, run: str) -> tuple[Sent, str, bytes]:
    """Request ``n`` of ``kind``: its record, envelope recipient and bytes."""
    msg = EmailMessage()
    sender = f"load{n}-{run}@clients.example"
    msg["From"] = sender
    msg["Message-ID"] = f"<load-{run}-{n}@clients.example>"
    if kind == "lookup":
        to, subject, body = f"lookup@{DOMAIN}", "LOOKUP " + LOOKUPS[n % len(LOOKUPS)], "Sent by bench/load.py\n"
    elif kind == "subscribe":
        to, subject, body = f"jobs@{DOMAIN}", "SUBSCRIBE JOBS remote CPC weekly", "SUBSCRIBE JOBS remote CPC weekly\n"
    else:
        to, subject = f"ask@{DOMAIN}", f"Billing question {n}"
        body = f"Can 20610 and 99213-25 be billed together for case {n}? Date of service 03/15/2026.\n"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return Sent(str(msg["Message-ID"]), kind, sender), to, msg.as_bytes()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def env_for(values: dict[str, object]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update({"MAILBOT_" + k.upper().replace(".", "__"): str(v) for k, v in values.items()})
    env["PYTHONPATH"] = str(ROOT)
    return env


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}: {log.read_text()[-3000:]}")


@dataclass
class LoadRun:
    db_url: str
    redis_url: str
    workdir: Path
    messages: int = 10_000
    clients: int = 10
    workers: int = 2
    threads: int = 4
    baseline_lookups: int = 20
    drain_timeout: float = 1800.0
    namespace: str = field(default_factory=lambda: f"mailbot-load-{uuid.uuid4().hex[:8]}")


def _send_all(port: int, items: list[tuple[Sent, str, bytes]]) -> None:
    """One client: one SMTP session for its share; a refused message is retried."""
    smtp: smtplib.SMTP | None = None
    for sent, to, raw in items:
        while not sent.acked and sent.tries < 20:
            sent.tries += 1
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", port, timeout=60)
                sent.started = time.perf_counter()
                smtp.sendmail(sent.sender, [to], raw)
                sent.acked = True
            except (OSError, smtplib.SMTPException):
                if smtp is not None:
                    try:
                        smtp.close()
                    except OSError:
                        pass
                smtp = None
                time.sleep(0.2 * sent.tries)
    if smtp is not None:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass


def run_load(cfg: LoadRun, log=print) -> dict:
    """Start the processes, send the mix, wait for the replies; returns the
    figures and the invariant checks (``ok`` is True when all hold)."""
    from aiosmtpd.controller import Controller
    from dramatiq.brokers.redis import RedisBroker
    from sqlalchemy import create_engine, func, select as sa_select

    from mailbot.models import InboundMessage, OutboundMessage

    sink = ReplySink()
    relay_port, smtp_port = free_port(), free_port()
    relay = Controller(sink, hostname="127.0.0.1", port=relay_port)
    relay.start()
    values = {"database.url": cfg.db_url, "broker.url": cfg.redis_url, "broker.namespace": cfg.namespace,
              "broker.embedded_threads": cfg.threads, "relay.host": "127.0.0.1", "relay.port": relay_port,
              "smtp.host": "127.0.0.1", "smtp.port": smtp_port, "service.var_dir": cfg.workdir / "var",
              "service.domain": DOMAIN, "web.session_secret": "load-bench-" + "s" * 40}
    env = env_for(values)
    procs: list[tuple[subprocess.Popen, object]] = []

    def start(part: str, name: str) -> subprocess.Popen:
        out = (cfg.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen([MAILBOT, part], cwd=cfg.workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent())
        procs.append((proc, out))
        return proc

    broker = RedisBroker(url=cfg.redis_url, namespace=cfg.namespace)
    engine = create_engine(cfg.db_url)

    def depth() -> int:
        # dramatiq's qsize: messages waiting, delayed (retries, NotYetDelivered) or being worked on.
        return broker.do_qsize("default")

    run = uuid.uuid4().hex[:6]
    try:
        smtpd = start("smtpd", "smtpd")
        wait_port(smtp_port, smtpd, cfg.workdir / "smtpd.log")
        for n in range(cfg.workers):
            start("worker", f"worker{n}")

        # Baseline: LOOKUPs one at a time on the idle system (also warms the workers up).
        baseline: list[float] = []
        for n in range(cfg.baseline_lookups + 3):
            sent, to, raw = make_message(10**7 + n, "lookup", run)
            _send_all(smtp_port, [(sent, to, raw)])
            deadline = time.monotonic() + 120
            while sent.message_id not in sink.snapshot():
                if time.monotonic() > deadline:
                    raise RuntimeError("no reply to a baseline LOOKUP within 120 s; see the worker logs in "
                                       + str(cfg.workdir))
                time.sleep(0.005)
            if n >= 3:
                baseline.append((sink.snapshot()[sent.message_id][0][0] - sent.started) * 1000)
        sink_before = sink.count()
        stored_before = _count(engine, sa_select(func.count()).select_from(InboundMessage))

        items = [make_message(n, CYCLE[n % len(CYCLE)], run) for n in range(cfg.messages)]
        shares = [items[c::cfg.clients] for c in range(cfg.clients)]
        max_depth = [0]
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.5):
                max_depth[0] = max(max_depth[0], depth())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=_send_all, args=(smtp_port, share)) for share in shares]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent_seconds = time.perf_counter() - t0
        log(f"sent {cfg.messages} messages in {sent_seconds:.1f} s; waiting for the replies", flush=True)

        expected = cfg.messages
        deadline = time.monotonic() + cfg.drain_timeout
        last_report = time.monotonic()
        while True:
            replied = sink.count() - sink_before
            queued = depth()
            if replied >= expected and queued == 0:
                break
            if time.monotonic() > deadline:
                break
            if time.monotonic() - last_report > 15:
                log(f"  {replied}/{expected} replies, queue depth {queued}", flush=True)
                last_report = time.monotonic()
            time.sleep(0.2)
        drained_seconds = time.perf_counter() - t0 - sent_seconds
        time.sleep(3.0)   # a duplicate would arrive now
        stop_sampling.set()
        final_depth = depth()

        # Pokes the workers' reconcilers added for work older than broker.stuck_after_seconds:
        # under a long backlog they re-poke items that are only waiting (harmless, not free).
        reenqueued = sum(int(m) for n in range(cfg.workers)
                         for m in re.findall(r"reconciler re-enqueued (\d+)",
                                             (cfg.workdir / f"worker{n}.log").read_text(errors="replace")))
        acked = sum(1 for s, _, _ in items if s.acked)
        retried = sum(1 for s, _, _ in items if s.tries > 1)
        stored = _count(engine, sa_select(func.count()).select_from(InboundMessage)) - stored_before
        pending = _count(engine, sa_select(func.count()).select_from(OutboundMessage)
                         .where(OutboundMessage.state != "sent"))
        replies = sink.snapshot()
        per_kind: dict[str, dict[str, int]] = {}
        latencies: list[float] = []
        for sent, _, _ in items:
            got = replies.get(sent.message_id, [])
            bucket = per_kind.setdefault(sent.kind, {"sent": 0, "answered_once": 0, "unanswered": 0, "duplicates": 0})
            bucket["sent"] += 1
            if len(got) == 1:
                bucket["answered_once"] += 1
            elif not got:
                bucket["unanswered"] += 1
            else:
                bucket["duplicates"] += len(got) - 1
            if sent.kind == "lookup" and got:
                latencies.append((got[0][0] - sent.started) * 1000)
        checks = {
            "stored_equals_acknowledged": stored == acked,
            "all_acknowledged": acked == cfg.messages,
            "queue_drained": final_depth == 0,
            "every_request_answered_exactly_once": all(
                b["answered_once"] == b["sent"] for b in per_kind.values()),
            "no_outbound_left_pending": pending == 0,
        }
        return {
            "ok": all(checks.values()), "checks": checks,
            "messages": cfg.messages, "clients": cfg.clients, "workers": cfg.workers,
            "worker_threads": cfg.threads, "acknowledged": acked, "stored": stored,
            "client_retries": retried, "per_kind": per_kind,
            "accepted_per_s": round(cfg.messages / sent_seconds, 1),
            "replies_per_s": round(cfg.messages / (sent_seconds + drained_seconds), 1),
            "send_seconds": round(sent_seconds, 1), "drain_after_send_seconds": round(drained_seconds, 1),
            "max_queue_depth": max_depth[0], "final_queue_depth": final_depth,
            "reconciler_reenqueued": reenqueued,
            "lookup_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "lookup_p95_ms": round(pct(latencies, 95), 1) if latencies else None,
            "idle_lookup_p50_ms": round(statistics.median(baseline), 1),
            "idle_lookup_p95_ms": round(pct(baseline, 95), 1),
            "lookup_p95_over_idle_p95": round(pct(latencies, 95) / pct(baseline, 95), 1) if latencies else None,
        }
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, out in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            out.close()
        relay.stop()
        for key in broker.client.scan_iter(f"{cfg.namespace}*"):
            broker.client.delete(key)
        broker.close()
        engine.dispose()


def _count(engine, query) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _database(sqlite: bool, tmp: Path) -> tuple[str, callable]:
    if sqlite:
        return f"sqlite:///{tmp / 'load.db'}", lambda: None
    from sqlalchemy import create_engine, text

    name = f"mailbot_bench_load_{os.getpid()}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="mailbot worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    db_url, drop = _database(args.sqlite, tmp)
    try:
        from mailbot.codes.importers import ensure_loaded
        from mailbot.config import load_settings
        from mailbot.context import Context, configure

        ctx = configure(Context(load_settings(path=None, environ={}, overrides={
            "database.url": db_url, "service.var_dir": str(tmp / "var")})))
        ctx.db.upgrade()
        started = time.perf_counter()
        ensure_loaded(ctx)
        print(f"database ready with code sets in {time.perf_counter() - started:.1f}s", flush=True)
        ctx.db.dispose()
        load_avg = os.getloadavg()[0]
        results = run_load(LoadRun(db_url, REDIS_URL, tmp, messages=args.messages, clients=args.clients,
                                   workers=args.workers, threads=args.threads))
    finally:
        drop()
    results.update({
        "database": "sqlite" if args.sqlite else "postgresql",
        "load_average_at_start": round(load_avg, 1),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "baseline": "same run: LOOKUP reply latency on the idle system, one at a time, before the load",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    })
    print(json.dumps({k: v for k, v in results.items() if k != "per_kind"}, indent=1))
    print("per kind:", json.dumps(results["per_kind"]))
    out = ROOT / "bench" / "results" / ("load-sqlite.json" if args.sqlite else "load.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    if not results["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
