"""LOOKUP replies per second and latency at a steady 80% of capacity, on the
embedded default and on the scaled set-up, optionally against an earlier
tree of the code in the same run.

    .venv/bin/python bench/replies.py [--setup embedded|scaled|both] [--burst 300] [--steady-seconds 30]
                                      [--compare-with DIR]

Set-ups (real processes, real SMTP both ways):

- ``embedded``: one ``mailbot serve`` (SQLite file, in-process queue and
  worker, code sets imported at start);
- ``scaled``: ``mailbot smtpd`` + ``--workers`` (2) ``mailbot worker``
  processes on Redis and PostgreSQL (code sets imported before).

For each: warm-up; LOOKUPs one at a time on the idle system (p50); the
*capacity* -- a burst of ``--burst`` LOOKUPs from 8 clients, replies/s from
the first send to the last reply; then a *steady* open-loop run at 80% of
that capacity for ``--steady-seconds`` (requests sent on a fixed schedule,
latency = end of the request's SMTP DATA to its reply at the relay sink),
p50/p95 and the reply rate achieved.  Because the machine is shared, the
burst also records the server processes' CPU time: CPU ms per reply, and
the replies/s that would make on the machine's cores if they were idle.

Baseline in the same run: with ``--compare-with DIR`` (a checkout of an
earlier commit, e.g. ``git worktree add /tmp/before <commit>`` or ``git
archive <commit> | tar -x -C /tmp/before``) the same measurements run on that
tree first, and the figures are given as ratios.  The machine is shared, so
only ratios within one run mean much.  Writes ``bench/results/replies.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load import (  # noqa: E402  (the load benchmark's helpers: same processes, same sink)
    MAILBOT,
    REDIS_URL,
    ReplySink,
    _database,
    _send_all,
    env_for,
    free_port,
    make_message,
    pct,
    wait_port,
)
from tests.support.children import die_with_parent  # noqa: E402  (children end with this process)

CLIENTS = 8


def _start(cmd: str, env: dict, workdir: Path, name: str, procs: list) -> subprocess.Popen:
    out = (workdir / f"{name}.log").open("ab")
    proc = subprocess.Popen([MAILBOT, cmd], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=die_with_parent())
    procs.append((proc, out))
    return proc


def _stop(procs: list) -> None:
    for proc, _ in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc, out in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


class Client:
    """Sends LOOKUPs and waits for their replies at the sink."""

    def __init__(self, port: int, sink: ReplySink, run: str) -> None:
        self.port, self.sink, self.run = port, sink, run
        self.counter = iter(range(10**9))
        self.lock = threading.Lock()

    def request(self):
        with self.lock:
            n = next(self.counter)
        return make_message(n, "lookup", self.run)

    def wait(self, sents, timeout: float = 300.0) -> list[float]:
        """Latency (ms) of each request, once all replies are in."""
        deadline = time.monotonic() + timeout
        while True:
            arrived = self.sink.snapshot()
            if all(s.message_id in arrived for s in sents):
                return [(arrived[s.message_id][0][0] - s.started) * 1000 for s in sents]
            if time.monotonic() > deadline:
                missing = sum(s.message_id not in arrived for s in sents)
                raise RuntimeError(f"{missing} of {len(sents)} replies missing after {timeout}s")
            time.sleep(0.005)

    def arrival(self, sent) -> float:
        return self.sink.snapshot()[sent.message_id][0][0]


def _idle(client: Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        sent, to, raw = client.request()
        _send_all(client.port, [(sent, to, raw)])
        out += client.wait([sent], 120)
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the server processes (Linux /proc)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _settle(pids: list[int], quiet: float = 0.05, timeout: float = 180.0) -> None:
    """Wait until the idle servers use less than ``quiet`` s of CPU per
    second: the first LOOKUP starts background builds (the in-memory code
    knowledge and facts, seconds of CPU) that would otherwise be counted
    in the burst's CPU per reply."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_seconds(pids)
        if now - before < quiet:
            return
        before = now


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]                         # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def _capacity(client: Client, n: int, pids: list[int]) -> dict:
    """Replies/s of a burst (wall clock); the servers' and this harness's
    (clients + relay sink) CPU ms per reply; the machine's busy share."""
    items = [client.request() for _ in range(n)]
    shares = [items[c::CLIENTS] for c in range(CLIENTS)]
    cpu0, own0, (busy0, all0) = cpu_seconds(pids), time.process_time(), machine_busy()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(lambda share: _send_all(client.port, share), shares))
    sents = [s for s, _, _ in items]
    client.wait(sents, 600)
    cpu, own, (busy1, all1) = cpu_seconds(pids) - cpu0, time.process_time() - own0, machine_busy()
    last = max(client.arrival(s) for s in sents)
    return {"rate": n / (last - t0), "cpu_ms": cpu * 1000 / n, "harness_cpu_ms": own * 1000 / n,
            "machine_busy": (busy1 - busy0) / max(all1 - all0, 1e-9)}


def _steady(client: Client, rate: float, seconds: float) -> dict:
    """Open loop: request i is due at t0 + i/rate, sent by whichever of the
    clients is free (each keeps its SMTP session)."""
    total = max(10, int(rate * seconds))
    due: queue.Queue = queue.Queue()
    items = [client.request() for _ in range(total)]
    late = [0]

    def sender() -> None:
        smtp = smtplib.SMTP("127.0.0.1", client.port, timeout=60)
        try:
            while True:
                job = due.get()
                if job is None:
                    return
                when, (sent, to, raw) = job
                pause = when - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                elif pause < -0.05:
                    late[0] += 1
                sent.started = time.perf_counter()
                smtp.sendmail(sent.sender, [to], raw)
                sent.acked = True
        finally:
            smtp.quit()

    threads = [threading.Thread(target=sender) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    t0 = time.perf_counter() + 0.2
    for i, item in enumerate(items):
        due.put((t0 + i / rate, item))
    for _ in threads:
        due.put(None)
    for t in threads:
        t.join()
    sents = [s for s, _, _ in items]
    latencies = client.wait(sents, 600)
    last = max(client.arrival(s) for s in sents)
    return {"offered_per_s": round(rate, 1), "requests": total, "replies_per_s": round(total / (last - t0), 1),
            "p50_ms": round(pct(latencies, 50), 1), "p95_ms": round(pct(latencies, 95), 1),
            "sent_late": late[0]}


def measure(setup: str, tree: Path, args, workdir: Path) -> dict:
    """Start the set-up from ``tree``, measure, stop; returns the figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    sink = ReplySink()
    relay_port, smtp_port = free_port(), free_port()
    from aiosmtpd.controller import Controller

    relay = Controller(sink, hostname="127.0.0.1", port=relay_port)
    relay.start()
    sqlite = setup == "embedded"
    db_url, drop_db = _database(sqlite, workdir)
    namespace = f"mailbot-replies-{uuid.uuid4().hex[:8]}"
    values = {"database.url": db_url, "relay.host": "127.0.0.1", "relay.port": relay_port,
              "smtp.host": "127.0.0.1", "smtp.port": smtp_port, "service.var_dir": workdir / "var",
              "service.domain": "mailbot.localhost", "web.enabled": "false",
              "web.session_secret": "replies-bench-" + "s" * 40}
    if not sqlite:
        values.update({"broker.url": REDIS_URL, "broker.namespace": namespace, "broker.embedded_threads": args.threads})
    env = env_for(values)
    env["PYTHONPATH"] = str(tree)
    procs: list = []
    try:
        if not sqlite:  # import the code sets once, with that tree's importer
            subprocess.run([sys.executable, "-c", "from mailbot.context import current; "
                            "from mailbot.codes.importers import ensure_loaded; c = current(); c.db.upgrade(); "
                            "ensure_loaded(c)"], env=env, cwd=workdir, check=True)
            smtpd = _start("smtpd", env, workdir, "smtpd", procs)
            wait_port(smtp_port, smtpd, workdir / "smtpd.log")
            for n in range(args.workers):
                _start("worker", env, workdir, f"worker{n}", procs)
        else:
            serve = _start("serve", env, workdir, "serve", procs)
            wait_port(smtp_port, serve, workdir / "serve.log", timeout=300)
        client = Client(smtp_port, sink, uuid.uuid4().hex[:6])
        _idle(client, 5)                                     # warm-up: imports, caches, connections
        # and a concurrent handful, so that every worker process and thread
        # has answered (one at a time, the worker that just answered polls
        # soonest and takes them all; a cold one would start its knowledge
        # build in the measured part)
        _capacity(client, 8 * CLIENTS, [proc.pid for proc, _ in procs])
        _settle([proc.pid for proc, _ in procs])             # background builds (code knowledge, facts) done
        idle = _idle(client, args.idle)
        burst = _capacity(client, args.burst, [proc.pid for proc, _ in procs])
        capacity, cpu_ms = burst["rate"], burst["cpu_ms"]
        steady = _steady(client, 0.8 * capacity, args.steady_seconds)
    finally:
        _stop(procs)
        relay.stop()
        if not sqlite:
            import redis

            r = redis.Redis.from_url(REDIS_URL)
            for key in r.scan_iter(f"{namespace}*"):
                r.delete(key)
        drop_db()
    cores = os.cpu_count() or 1
    result = {"setup": setup, "tree": str(tree), "idle_p50_ms": round(pct(idle, 50), 1),
              "capacity_replies_per_s": round(capacity, 1), "server_cpu_ms_per_reply": round(cpu_ms, 1),
              "replies_per_s_on_idle_cores": round(cores * 1000 / cpu_ms, 1),
              "harness_cpu_ms_per_reply": round(burst["harness_cpu_ms"], 1),
              "machine_busy_during_burst": round(burst["machine_busy"], 2), "steady_80pct": steady}
    print(f"  {setup:8} {tree}: idle p50 {result['idle_p50_ms']} ms, capacity {result['capacity_replies_per_s']}/s "
          f"({cpu_ms:.1f} ms server CPU per reply -> {result['replies_per_s_on_idle_cores']}/s on {cores} idle cores; "
          f"harness {result['harness_cpu_ms_per_reply']} ms/reply, machine {result['machine_busy_during_burst']:.0%} busy), "
          f"at 80%: {steady['replies_per_s']}/s p50 {steady['p50_ms']} ms p95 {steady['p95_ms']} ms", flush=True)
    return result


GOALS = {"embedded": {"replies_per_s": 100, "p50_ms": 50}, "scaled": {"replies_per_s": 150, "p50_ms": 50}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", choices=("embedded", "scaled", "both"), default="both")
    parser.add_argument("--burst", type=int, default=300, help="LOOKUPs in the capacity burst")
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    parser.add_argument("--idle", type=int, default=20, help="LOOKUPs one at a time on the idle system")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (scaled)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument("--compare-with", default="", help="an earlier tree to measure first, as the baseline")
    args = parser.parse_args()
    setups = ["embedded", "scaled"] if args.setup == "both" else [args.setup]
    tmp = Path(tempfile.mkdtemp(prefix="bench-replies-"))
    load_at_start = os.getloadavg()[0]
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
                     "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "load_average_at_start": round(load_at_start, 2), "goals": GOALS, "rows": []}
    for setup in setups:
        baseline = measure(setup, Path(args.compare_with), args, tmp / f"{setup}-before") if args.compare_with else None
        ours = measure(setup, ROOT, args, tmp / f"{setup}-after")
        row = {"setup": setup, "ours": ours, "baseline": baseline}
        if baseline:
            row["capacity_ratio"] = round(ours["capacity_replies_per_s"] / baseline["capacity_replies_per_s"], 2)
            row["cpu_per_reply_ratio"] = round(ours["server_cpu_ms_per_reply"] / baseline["server_cpu_ms_per_reply"], 2)
            row["steady_p50_ratio"] = round(ours["steady_80pct"]["p50_ms"] / baseline["steady_80pct"]["p50_ms"], 2)
        row["meets_goal"] = (ours["capacity_replies_per_s"] >= GOALS[setup]["replies_per_s"]
                             and ours["steady_80pct"]["p50_ms"] <= GOALS[setup]["p50_ms"])
        results["rows"].append(row)
    out = ROOT / "bench" / "results" / "replies.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
