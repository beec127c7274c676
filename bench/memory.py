"""Peak memory of ``mailbot serve`` (embedded: SQLite, in-process queue,
code sets loaded), against bare baselines measured in the same run.

    .venv/bin/python bench/memory.py [--requests 60]

Starts ``mailbot serve`` in a fresh var/ directory (so it imports the
shipped code sets into its SQLite file, as on a first start), waits until
SMTP and the web app answer, reads VmRSS, then drives traffic -- LOOKUPs,
SEARCHes (which build the in-process search index), CHECKs, questions
(acknowledged and drafted offline) and web page loads -- waits for every
reply in the Maildir outbox, and reads VmHWM (the peak resident set) from
``/proc/<pid>/status``.

Baselines, same run, same interpreter: ``python -c pass``, ``python -c
'import mailbot'``, and a process that imports every part ``serve`` runs
(actors, web app, SMTP listener, code knowledge base) without loading data.
Writes ``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.children import die_with_parent  # noqa: E402  (children end with this process)

MAILBOT = str(Path(sys.executable).with_name("mailbot"))
DOMAIN = "mailbot.localhost"
PEAK = "import re; print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
IMPORT_ALL = ("import workflows.broker, workflows.actors, reviewers.app, mailbot.mail.smtp_listener, "
              "mailbot.codes.lookup, mailbot.codes.search, mailbot.drafting.offline, mailbot_cli.processes")
TRAFFIC = [("lookup", "LOOKUP 50250 J1030 E11.22"), ("lookup", "SEARCH type 2 diabetes with kidney disease"),
           ("lookup", "CHECK 20610 99213"), ("lookup", "SEARCH knee injection"),
           ("ask", "Can 20610 and 99213-25 be billed together?")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def baseline_kb(code: str) -> int:
    """Peak RSS (kB) of a fresh interpreter running ``code``."""
    out = subprocess.run([sys.executable, "-c", f"{code}\n{PEAK}"], cwd=ROOT, env=_env({}),
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def _env(values: dict[str, object]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update({"MAILBOT_" + k.upper().replace(".", "__"): str(v) for k, v in values.items()})
    env["PYTHONPATH"] = str(ROOT)
    return env


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mailbot serve exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"mailbot serve did not listen on {port} within {timeout}s")


def send(port: int, n: int, local: str, subject: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"mem{n}@clients.example"
    msg["To"] = f"{local}@{DOMAIN}"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<mem-{n}@clients.example>"
    msg.set_content(subject + "\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.send_message(msg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60, help="mail requests to send (mixed)")
    args = parser.parse_args()

    base = {"python_bare_kb": baseline_kb("pass"), "import_mailbot_kb": baseline_kb("import mailbot"),
            "import_every_part_kb": baseline_kb(IMPORT_ALL)}
    print("baselines (VmHWM kB):", base, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    smtp_port, web_port = free_port(), free_port()
    log = (tmp / "serve.log").open("ab")
    started = time.perf_counter()
    proc = subprocess.Popen([MAILBOT, "serve"], cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=die_with_parent(),
                            env=_env({"service.var_dir": tmp / "var", "smtp.port": smtp_port, "web.port": web_port,
                                      "smtp.host": "127.0.0.1", "web.host": "127.0.0.1",
                                      "web.session_secret": "memory-bench-" + "s" * 40}))
    try:
        wait_port(smtp_port, proc)
        wait_port(web_port, proc)
        ready_seconds = time.perf_counter() - started
        rss_ready = status_kb(proc.pid, "VmRSS")
        hwm_ready = status_kb(proc.pid, "VmHWM")
        print(f"serve ready in {ready_seconds:.1f}s: VmRSS {rss_ready} kB, VmHWM {hwm_ready} kB", flush=True)

        for n in range(args.requests):
            local, subject = TRAFFIC[n % len(TRAFFIC)]
            send(smtp_port, n, local, subject)
            with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/login", timeout=30) as page:
                page.read()
        outbox = tmp / "var" / "outbox" / "new"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if outbox.exists() and len(list(outbox.iterdir())) >= args.requests:
                break
            time.sleep(0.5)
        replies = len(list(outbox.iterdir())) if outbox.exists() else 0
        hwm = status_kb(proc.pid, "VmHWM")
        rss = status_kb(proc.pid, "VmRSS")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()

    results = {
        "serve_peak_mb": round(hwm / 1024, 1),
        "serve_rss_after_traffic_mb": round(rss / 1024, 1),
        "serve_rss_when_ready_mb": round(rss_ready / 1024, 1),
        "serve_peak_when_ready_mb": round(hwm_ready / 1024, 1),
        "serve_ready_seconds": round(ready_seconds, 1),
        "import_mailbot_peak_mb": round(base["import_mailbot_kb"] / 1024, 1),
        "import_every_part_peak_mb": round(base["import_every_part_kb"] / 1024, 1),
        "python_bare_peak_mb": round(base["python_bare_kb"] / 1024, 1),
        "serve_peak_over_import_mailbot": round(hwm / base["import_mailbot_kb"], 1),
        "serve_peak_over_import_every_part": round(hwm / base["import_every_part_kb"], 1),
        "requests": args.requests, "replies_in_outbox": replies,
        "baseline": "same run: VmHWM of python -c 'import mailbot' and of a process importing every part of serve",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(json.dumps(results, indent=1))
    out = ROOT / "bench" / "results" / "memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    if replies < args.requests:
        sys.exit(f"only {replies} of {args.requests} replies arrived; see {tmp / 'serve.log'}")


if __name__ == "__main__":
    main()
