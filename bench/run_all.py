"""Run every benchmark and gather the figures.

    .venv/bin/python bench/run_all.py [name ...]
    .venv/bin/python bench/run_all.py --collect   # only gather the last figures

Each ``bench/<name>.py`` writes ``bench/results/<name>.json`` (a flat object
of figures plus ``machine`` and ``baseline`` notes).  This script runs them one
after another (they measure, so they must not compete for the 2 cores), then
writes ``bench/results.json`` and the table between the markers in
``bench/README.md``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ORDER = ["search", "answers", "intake", "lookup", "cards", "replies", "redaction", "web", "digest", "digest_e2e",
         "load", "memory"]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"


def run(names: list[str]) -> dict:
    results: dict[str, dict] = {}
    for name in names:
        script = BENCH / f"{name}.py"
        if not script.exists():
            results[name] = {"error": "benchmark script missing"}
            continue
        started = time.monotonic()
        proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        out = BENCH / "results" / f"{name}.json"
        if proc.returncode != 0 or not out.exists():
            results[name] = {"error": f"exit {proc.returncode}", "stderr": proc.stderr[-2000:]}
        else:
            results[name] = json.loads(out.read_text())
        results[name]["wall_seconds"] = round(elapsed, 1)
        print(f"{name}: {'ok' if 'error' not in results[name] else results[name]['error']} ({elapsed:.0f}s)", flush=True)
    return results


def table(results: dict) -> str:
    rows = ["| benchmark | figure | value |", "|---|---|---|"]
    for name, figures in results.items():
        for key, value in figures.items():
            if key in ("machine", "stderr") or isinstance(value, (dict, list)):
                continue
            rows.append(f"| {name} | {key} | {value} |")
    return "\n".join(rows)


def collected() -> dict:
    """The figures each benchmark last wrote, without running anything."""
    return {name: json.loads((BENCH / "results" / f"{name}.json").read_text())
            for name in ORDER if (BENCH / "results" / f"{name}.json").exists()}


def main() -> None:
    args = sys.argv[1:]
    if args == ["--collect"]:       # rebuild results.json and the table from bench/results/
        results = {}
    else:
        results = run(args or ORDER)
    merged = {**collected(), **results}
    (BENCH / "results.json").write_text(json.dumps({"machine": machine(), "benchmarks": merged}, indent=2) + "\n")
    readme = BENCH / "README.md"
    text = readme.read_text() if readme.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\nMachine: {machine()}\n\n{table(merged)}\n{END}{tail}")


if __name__ == "__main__":
    main()
