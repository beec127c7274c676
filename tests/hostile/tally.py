"""What the hostile-input suite tried, counted, written to bench/results/hostile.json.

Tests call :func:`count` with a name and a number; at the end of the test
session the totals are written to the JSON file with the machine noted: a
run of the whole suite replaces it, a partial run updates only the names it
counted.  Counts of database tests add up both backends.
"""

from __future__ import annotations

import json
import os
import platform
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "hostile.json"

# Names only a run of every hostile module produces.
FULL_RUN = {"fuzz.mime_parser", "fuzz.command_parser", "web.routes", "probe.rcpt_refused",
            "probe.bounce_storm_dsns", "probe.prompt_injection_variants", "web.payloads"}

_counts: Counter[str] = Counter()
_lock = threading.Lock()


def count(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def write() -> Path | None:
    """Merge this session's counts into :data:`RESULTS`; None when nothing ran."""
    counts = snapshot()
    if not counts:
        return None
    try:
        previous = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        previous = {}
    # A run of the whole suite replaces the file; a partial run updates its names.
    complete = FULL_RUN <= counts.keys()
    merged = counts if complete else {**previous.get("counts", {}), **counts}
    generated = sum(v for k, v in merged.items() if k.startswith("fuzz."))
    document = {
        "what": "hostile-input suite (tests/hostile): inputs tried per probe; fuzz.* are generated messages",
        "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "complete_run": complete,
        "machine": {"python": platform.python_version(), "system": platform.platform(), "cpus": os.cpu_count()},
        "generated_messages_total": generated,
        "counts": dict(sorted(merged.items())),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    return RESULTS
