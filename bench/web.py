"""Reviewer web app under a full queue: page latency and throughput.

    .venv/bin/python bench/web.py [--pending 10000] [--requests 200] [--seconds 5] [--sqlite-only]

Set-up: 10,000 consultations awaiting review (each with its inbound message
and an LLM draft citing codes), a few hundred finished ones, six reviewers;
the real app served by uvicorn on loopback; a logged-in session; requests
from httpx over HTTP.  Runs on a SQLite file (embedded mode) and on
PostgreSQL (scaled mode) unless ``--sqlite-only``.

Figures, measured in the same run:

- ``healthz``: the app's cheapest route (middleware + one ``SELECT 1``) --
  the baseline;
- ``queue``: the first page of the queue (awaiting review, oldest first),
  ``queue_filtered`` (code system + has flags + search words) and
  ``queue_deep`` (page 150); p50/p95/p99 in ms and the ratio to healthz;
- ``detail``: a consultation's detail page (thread, draft, code cards with
  fresh verdicts and NCCI/MUE checks against the imported code sets, audit);
  p50/p95/p99 and ratio;
- ``detail_no_codes``: the same page for consultations citing no code, so
  the difference is what the code cards (``mailbot.codes.lookup`` and
  ``edits.check``) cost;
- ``queue_rps``: queue pages per second, 1 client and 4 concurrent clients.

Target: p95 < 100 ms for queue and detail pages.  Writes bench/results/web.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from itsdangerous import URLSafeTimedSerializer  # noqa: E402
from sqlalchemy import insert, update  # noqa: E402

from mailbot.config import load_settings  # noqa: E402
from mailbot.context import Context, configure  # noqa: E402
from mailbot.db import Database  # noqa: E402
from mailbot.models import (  # noqa: E402
    AuditEvent, Consultation, ConsultationState, Draft, InboundMessage, Reviewer, utcnow,
)
from reviewers.sessions import COOKIE_NAME  # noqa: E402

SECRET = "bench-session-secret-" + "b" * 40
SUBJECTS = ["Can 20610 and 99213 be billed together?", "ICD-10 for type 2 diabetes with CKD 3a",
            "Modifier 59 vs XS on 11042", "J1030 units for 80 mg", "Z79.4 with E11.65?", "G0439 and 99397 same day",
            "Laterality for M17.11", "E/M level for new patient telehealth", "Wound care 97597 with 11042",
            "HCPCS for walker E0143"]
SYSTEMS = [["cpt"], ["icd10cm"], ["cpt", "icd10cm"], ["hcpcs"], ["cpt", "hcpcs"]]
CITED = [{"code": "20610", "system": "cpt", "role": "procedure", "status": "unlicensed_descriptor", "ok": True},
         {"code": "99213", "system": "cpt", "role": "procedure", "status": "unlicensed_descriptor", "ok": True},
         {"code": "E11.22", "system": "icd10cm", "role": "diagnosis", "status": "ok", "ok": True}]


def seed(db: Database, pending: int, finished: int = 500) -> list[int]:
    rnd = random.Random(7)
    now = utcnow()
    with db.session() as session:
        people = [Reviewer(email=f"r{i}@coders.example", name=f"Reviewer {i}", role="admin" if i == 0 else "reviewer",
                           password_hash="x") for i in range(6)]
        session.add_all(people)
        session.flush()
        ids = [p.id for p in people]
    rows = []
    for i in range(pending + finished):
        age = timedelta(minutes=rnd.randint(1, 60 * 72))
        done = i >= pending
        rows.append(dict(subject=f"{rnd.choice(SUBJECTS)} (#{i})", asker_email=f"coder{i % 900}@clinic{i % 37}.example",
                         asker_name=f"Coder {i % 900}",
                         state=ConsultationState.SENT.value if done else ConsultationState.AWAITING_REVIEW.value,
                         version=1, created_at=now - age, updated_at=now - age, state_changed_at=now - age,
                         waiting_since=now - age, code_systems=rnd.choice(SYSTEMS), flags=rnd.choice([0, 0, 0, 1, 2]),
                         claimed_by_id=rnd.choice([None, None, None, *ids]), thread_message_ids=[f"<q{i}@x>"],
                         root_message_id=f"<q{i}@x>", failure_reason="", attempts=0,
                         answered_at=now - age + timedelta(hours=3) if done else None,
                         approved_by_id=rnd.choice(ids) if done else None))
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(insert(Consultation), rows[start:start + 2000])
    with db.read() as session:
        cids = [c for c, in session.exec(Consultation.__table__.select().with_only_columns(Consultation.id)).all()]
    inbound, drafts, audit = [], [], []
    text = ("Hello, patient seen for knee pain; steroid injection into the knee joint and a separate problem-focused "
            "visit for hypertension follow-up. Can we bill 20610 with 99213-25? Diabetes with CKD noted, E11.22.\n") * 3
    for cid in cids:
        inbound.append(dict(source="smtp", envelope_from="a@x", envelope_to=["ask@mailbot.localhost"], peer="",
                            raw=b"Subject: q\r\n\r\nq", raw_sha256=f"{cid:064d}", size=10, message_id=f"<q{cid}@x>",
                            in_reply_to="", references=[], from_addr="coder@clinic.example", from_name="Coder",
                            reply_to="", subject="Question", text=text, full_text=text,
                            html="<p>" + text.replace("\n", "<br>") + '<img src="https://t.example/p.gif"></p>',
                            codes=["20610", "99213", "E11.22"], status="processed", action="consult", route=[],
                            auto_reply_ok=True, consultation_id=cid, error="", attempts=0, received_at=now))
        drafts.append(dict(consultation_id=cid, source="llm", body="Draft answer. " * 40, cited_codes=CITED,
                           questions=[], model="bench", redacted_question=text, prompt=[], response="",
                           redactions=[], created_at=now))
        audit.append(dict(consultation_id=cid, actor="system", action="drafted", before="", after="", detail={},
                          created_at=now))
    with db.engine.begin() as conn:
        for table, data in ((InboundMessage, inbound), (Draft, drafts), (AuditEvent, audit)):
            for start in range(0, len(data), 2000):
                conn.execute(insert(table), data[start:start + 2000])
    with db.engine.begin() as conn:  # link each consultation to its message
        conn.exec_driver_sql("UPDATE consultation SET last_inbound_id = (SELECT max(m.id) FROM inbound_message m "
                             "WHERE m.consultation_id = consultation.id)")
    return cids[:pending]


def serve(ctx: Context) -> tuple[str, callable]:
    import socket

    import uvicorn

    from reviewers.app import create_app

    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only
    # when the listening socket says TCP; without it each response waits ~40 ms
    # (Nagle + delayed ACK) because uvicorn writes headers and body separately.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), log_level="warning", access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    return f"http://127.0.0.1:{port}", stop


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"n": len(samples), "p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "mean_ms": round(statistics.fmean(samples) * 1000, 2)}


def timed(client: httpx.Client, urls: list[str], expect: str | None = None) -> list[float]:
    samples = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200 or (expect and expect not in response.text):
            raise SystemExit(f"{url}: HTTP {response.status_code}")
    return samples


def rps(base: str, cookies: dict, url: str, seconds: float, clients: int) -> float:
    stop_at = time.monotonic() + seconds
    counts = [0] * clients

    def run(i: int) -> None:
        with httpx.Client(base_url=base, cookies=cookies) as c:
            while time.monotonic() < stop_at:
                c.get(url).raise_for_status()
                counts[i] += 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(clients)))
    return round(sum(counts) / seconds, 1)


def import_codes(db: Database) -> None:
    """The shipped code sets (+ the synthetic NCCI/MUE sample), so the detail
    page's code cards, verdicts and NCCI checks do their real work."""
    from mailbot.codes.importers import import_sets

    ncci = ROOT / "tests" / "data" / "ncci"
    import_sets(db, source=ROOT / "data" / "codesets", ncci=sorted(ncci.glob("*.txt")), mue=sorted(ncci.glob("*.csv")))


def run_backend(name: str, db: Database, args, tmp: Path) -> dict:
    import_codes(db)
    started = time.perf_counter()
    cids = seed(db, args.pending)
    seeded = time.perf_counter() - started
    # A hundred consultations that cite no code: the detail page without the
    # knowledge base's share, to see what the code cards cost.
    plain = cids[-100:]
    with db.session() as session:
        session.exec(update(Draft).where(Draft.consultation_id.in_(plain)).values(cited_codes=[]))
        session.exec(update(InboundMessage).where(InboundMessage.consultation_id.in_(plain)).values(codes=[]))
    cids = cids[:-100]
    settings = load_settings(path=None, environ={}, overrides={
        "service.var_dir": str(tmp / f"var-{name}"), "database.url": db.url, "web.session_secret": SECRET})
    ctx = configure(Context(settings, db=db))
    base, stop = serve(ctx)
    cookies = {COOKIE_NAME: URLSafeTimedSerializer(SECRET, salt="mailbot.session").dumps({"rid": 1, "csrf": "c" * 32})}
    rnd = random.Random(1)
    try:
        with httpx.Client(base_url=base, cookies=cookies) as client:
            timed(client, ["/queue", f"/consultations/{cids[0]}", "/healthz"] * 5)  # warm up
            # Round-robin over the kinds, so a burst of load on this shared
            # machine hits every kind alike and the ratios stay fair.
            kinds = {
                "healthz": lambda: "/healthz",
                "queue": lambda: "/queue",
                "queue_filtered": lambda: "/queue?system=cpt&flagged=1&q=modifier",
                "queue_deep": lambda: "/queue?page=150",
                "detail": lambda: f"/consultations/{rnd.choice(cids)}",
                "detail_no_codes": lambda: f"/consultations/{rnd.choice(plain)}",
            }
            samples: dict[str, list[float]] = {k: [] for k in kinds}
            for _ in range(args.requests):
                for kind, url in kinds.items():
                    samples[kind].extend(timed(client, [url()]))
            result = {"seed_seconds": round(seeded, 1)}
            result.update({kind: percentiles(values) for kind, values in samples.items()})
        result["queue_rps_1_client"] = rps(base, cookies, "/queue", args.seconds, 1)
        result["queue_rps_4_clients"] = rps(base, cookies, "/queue", args.seconds, 4)
    finally:
        stop()
    base_p50 = result["healthz"]["p50_ms"] or 0.01
    for key in ("queue", "queue_filtered", "queue_deep", "detail", "detail_no_codes"):
        result[key]["ratio_p50_to_healthz"] = round(result[key]["p50_ms"] / base_p50, 1)
        result[key]["meets_p95_100ms"] = result[key]["p95_ms"] < 100
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    # Knowledge-base problems are shown on the page; keep their tracebacks out of the figures' output.
    logging.getLogger("reviewers.knowledge").setLevel(logging.CRITICAL)
    results = {"pending": args.pending, "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                                    "load_average_at_start": list(os.getloadavg())},
               "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        backends = ["sqlite"] if args.sqlite_only else ["sqlite", "postgresql"]
        for name in backends:
            from tests.conftest import make_database

            db, cleanup = make_database(name, tmp_path, f"benchweb{os.getpid()}")
            try:
                results["backends"][name] = run_backend(name, db, args, tmp_path)
            finally:
                cleanup()
            r = results["backends"][name]
            print(f"\n[{name}] {args.pending} pending (seeded in {r['seed_seconds']} s; "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
            print(f"  {'page':<16}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'x healthz':>11}")
            for key in ("healthz", "queue", "queue_filtered", "queue_deep", "detail", "detail_no_codes"):
                row = r[key]
                print(f"  {key:<16}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['p99_ms']:>9}"
                      f"{row.get('ratio_p50_to_healthz', 1.0):>11}")
            print(f"  queue pages/s: {r['queue_rps_1_client']} (1 client), {r['queue_rps_4_clients']} (4 clients)")
    out = ROOT / "bench" / "results" / "web.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
