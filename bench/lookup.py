"""LOOKUP by email, end to end: from the end of the SMTP DATA of a request to
the reply handed to the relay.

    .venv/bin/python bench/lookup.py [--sqlite] [--requests 100] [--sustained 200] [--clients 4]

Set-up (the scaled mode): the real SMTP listener in this process, the Redis
broker, one ``dramatiq workflows.actors`` worker process (router,
``run_command``, ``send_outbound``), PostgreSQL (or a SQLite file with
``--sqlite``) holding the imported code sets, and an aiosmtpd relay sink in
this process that timestamps each reply as it arrives.

Figures, all measured in the same run:

- ``smtp_hop``: one bare SMTP transaction client -> sink (the floor of one
  hop; a reply needs two, in and out);
- ``help``: HELP end to end (the whole pipeline without the knowledge base);
- ``lookup``: LOOKUP of three codes end to end, sequential; p50/p95, and
  the ratio to ``help`` (what the knowledge base adds);
- ``sustained``: LOOKUPs from several concurrent clients; replies per second.

Latency starts just before the client sends DATA (so it includes the
listener's durable store and 250) -- slightly more than from the final dot.
Each request comes from its own address so the daily cap never applies.
Writes ``bench/results/lookup.json`` (``lookup-sqlite.json`` with ``--sqlite``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from tests.support.children import die_with_parent  # noqa: E402  (children end with this process)

REDIS_URL = os.environ.get("MAILBOT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("MAILBOT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LOOKUPS = ["50250 J1030 E11.22", "99213 E11.9 I10", "J1100 M17.11 20610", "N18.31 E11.22 99214",
           "S52.521A J0696 A0425", "G0439 Z00.00 99397", "E78.5 I25.10 93000"]


class Sink:
    """Relay sink that records when each reply (by In-Reply-To) arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)

    async def handle_DATA(self, server, session, envelope):
        now = time.perf_counter()
        headers = BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        key = str(headers.get("In-Reply-To", "") or headers.get("Message-ID", "")).strip()
        with self.cond:
            self.arrived[key] = now
            self.cond.notify_all()
        return "250 2.0.0 queued"

    def wait(self, key: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        with self.cond:
            while key not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no reply to {key} in {timeout}s")
                self.cond.wait(left)
            return self.arrived[key]


def _message(subject: str, sender: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example.org>"
    msg.set_content("Sent by bench/lookup.py\n")
    return msg


def send_timed(port: int, msg: EmailMessage, rcpt: str) -> float:
    """Send ``msg``; returns perf_counter() just before DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo()
        smtp.mail(str(msg["From"]))
        smtp.rcpt(rcpt)
        started = time.perf_counter()
        code, answer = smtp.data(msg.as_bytes())
        if code != 250:
            raise RuntimeError(f"listener answered {code} {answer!r}")
    return started


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(pct(ms, 95), 1),
            "mean_ms": round(statistics.fmean(ms), 1), "max_ms": round(max(ms), 1)}


def database(sqlite: bool, tmp: Path) -> tuple[str, callable]:
    if sqlite:
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    from sqlalchemy import create_engine, text

    name = f"mailbot_bench_lookup_{os.getpid()}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


def stage_breakdown(ctx, first_sender: str, count: int) -> dict[str, float]:
    """Median time in each stage of the sequential LOOKUPs, from the rows'
    timestamps: stored -> routed -> reply queued -> handed to the relay."""
    from sqlmodel import select

    from mailbot.models import InboundMessage, OutboundMessage

    with ctx.db.read() as session:
        first = session.exec(select(InboundMessage.id).where(InboundMessage.from_addr == first_sender)).first()
        rows = session.exec(select(InboundMessage, OutboundMessage)
                            .join(OutboundMessage, OutboundMessage.inbound_id == InboundMessage.id)
                            .where(InboundMessage.id >= first).order_by(InboundMessage.id).limit(count)).all()
    parts = {"stored_to_routed_ms": [], "routed_to_reply_queued_ms": [], "queued_to_sent_ms": []}
    for inbound, outbound in rows:
        if not (inbound.processed_at and outbound.sent_at):
            continue
        parts["stored_to_routed_ms"].append((inbound.processed_at - inbound.received_at).total_seconds() * 1000)
        parts["routed_to_reply_queued_ms"].append((outbound.created_at - inbound.processed_at).total_seconds() * 1000)
        parts["queued_to_sent_ms"].append((outbound.sent_at - outbound.created_at).total_seconds() * 1000)
    return {k: round(statistics.median(v), 1) for k, v in parts.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="SQLite file instead of PostgreSQL")
    parser.add_argument("--requests", type=int, default=100, help="sequential LOOKUPs (and HELPs, hops: half)")
    parser.add_argument("--sustained", type=int, default=200, help="LOOKUPs for the throughput run")
    parser.add_argument("--clients", type=int, default=4, help="concurrent SMTP clients in the throughput run")
    parser.add_argument("--threads", type=int, default=4, help="worker threads in the worker process")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-lookup-"))
    db_url, drop_db = database(args.sqlite, tmp)
    namespace = f"mailbot-bench-{uuid.uuid4().hex[:8]}"
    sink = Sink()
    relay_port = free_port()
    relay = Controller(sink, hostname="127.0.0.1", port=relay_port)
    relay.start()

    from mailbot.config import load_settings
    from mailbot.context import Context, configure

    overrides = {"database.url": db_url, "broker.url": REDIS_URL, "broker.namespace": namespace,
                 "relay.host": "127.0.0.1", "relay.port": relay_port, "smtp.port": 0,
                 "service.var_dir": str(tmp / "var")}
    settings = load_settings(path=None, environ={}, overrides=overrides)
    ctx = configure(Context(settings))
    import workflows.broker

    broker = workflows.broker.install(settings)
    import workflows.actors  # noqa: F401  (declare actors on the Redis broker)
    from mailbot.codes.importers import ensure_loaded
    from mailbot.mail.smtp_listener import SmtpListener
    from mailbot_cli import processes

    started = time.perf_counter()
    ctx.db.upgrade()
    ensure_loaded(ctx)
    import_seconds = time.perf_counter() - started
    print(f"database ready with code sets in {import_seconds:.1f}s", flush=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update({"MAILBOT_" + k.upper().replace(".", "__"): str(v) for k, v in overrides.items()})
    env["PYTHONPATH"] = str(ROOT)
    env["MAILBOT_BROKER__EMBEDDED_THREADS"] = str(args.threads)
    # The product's worker process: dramatiq worker + reconciler + scheduler.
    worker = subprocess.Popen([str(Path(sys.executable).parent / "mailbot"), "worker"], cwd=tmp, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent())
    listener = SmtpListener(ctx, on_stored=processes.on_stored)
    listener.start()
    to = settings.service_address(settings.service.lookup_address)
    counter = iter(range(10**9))

    def one(subject: str) -> float:
        msg = _message(subject, f"bench{next(counter)}@example.org", to)
        t0 = send_timed(listener.port, msg, to)
        return (sink.wait(str(msg["Message-ID"])) - t0) * 1000

    try:
        for _ in range(5):  # warm-up: worker imports, caches, connections
            one("LOOKUP " + LOOKUPS[0])
        hop = []
        for _ in range(max(10, args.requests // 2)):
            msg = _message("hop", "bench-hop@example.org", "sink@example.org")
            t0 = send_timed(relay_port, msg, "sink@example.org")
            hop.append((sink.wait(str(msg["Message-ID"])) - t0) * 1000)
        help_ms = [one("HELP") for _ in range(max(10, args.requests // 2))]
        first_lookup = next(counter)
        lookup_ms = [one("LOOKUP " + LOOKUPS[i % len(LOOKUPS)]) for i in range(args.requests)]
        stages = stage_breakdown(ctx, f"bench{first_lookup + 1}@example.org", args.requests)

        subjects = ["LOOKUP " + LOOKUPS[i % len(LOOKUPS)] for i in range(args.sustained)]
        t_start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            latencies = list(pool.map(one, subjects))
        elapsed = time.perf_counter() - t_start
    finally:
        listener.stop()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        relay.stop()
        for key in broker.client.scan_iter(f"{namespace}*"):
            broker.client.delete(key)
        ctx.db.dispose()
        drop_db()

    lookup_s, help_s, hop_s, sus_s = summary(lookup_ms), summary(help_ms), summary(hop), summary(latencies)
    results = {
        "database": "sqlite" if args.sqlite else "postgresql",
        "lookup_p50_ms": lookup_s["p50_ms"], "lookup_p95_ms": lookup_s["p95_ms"],
        "help_p50_ms": help_s["p50_ms"], "help_p95_ms": help_s["p95_ms"],
        "smtp_hop_p50_ms": hop_s["p50_ms"],
        "lookup_over_help_p50": round(lookup_s["p50_ms"] / help_s["p50_ms"], 2),
        "lookup_over_smtp_hop_p50": round(lookup_s["p50_ms"] / hop_s["p50_ms"], 1),
        "sustained_lookups_per_s": round(len(subjects) / elapsed, 1),
        "sustained_clients": args.clients, "sustained_p50_ms": sus_s["p50_ms"], "sustained_p95_ms": sus_s["p95_ms"],
        "worker_threads": args.threads, "target_p50_ms": 250, "meets_target": lookup_s["p50_ms"] < 250,
        "code_set_load_seconds": round(import_seconds, 1),
        **{f"lookup_stage_{k}": v for k, v in stages.items()},
        "baseline": "same run: bare SMTP hop client->sink, and HELP through the same pipeline",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "detail": {"lookup": lookup_s, "help": help_s, "smtp_hop": hop_s, "sustained": sus_s},
    }
    print(f"smtp hop      p50 {hop_s['p50_ms']:7.1f} ms  p95 {hop_s['p95_ms']:7.1f} ms")
    print(f"HELP  e2e     p50 {help_s['p50_ms']:7.1f} ms  p95 {help_s['p95_ms']:7.1f} ms")
    print(f"LOOKUP e2e    p50 {lookup_s['p50_ms']:7.1f} ms  p95 {lookup_s['p95_ms']:7.1f} ms  "
          f"(x{results['lookup_over_help_p50']} HELP, x{results['lookup_over_smtp_hop_p50']} one SMTP hop; target p50 < 250 ms)")
    print("LOOKUP stages (median): " + ", ".join(f"{k} {v} ms" for k, v in stages.items()))
    print(f"sustained     {results['sustained_lookups_per_s']} lookups/s with {args.clients} clients "
          f"(p50 {sus_s['p50_ms']} ms, p95 {sus_s['p95_ms']} ms)")
    out = ROOT / "bench" / "results" / ("lookup-sqlite.json" if args.sqlite else "lookup.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
