"""What the hostile-input suite tried, counted, written to bench/results/hostile.json.

Tests call :func:`count` with a name and a number; at the end of the test
session the totals are merged into the JSON file (a partial run updates the
names it ran and keeps the others), with the machine noted.
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
    merged = {**previous.get("counts", {}), **counts}
    generated = sum(v for k, v in merged.items() if k.startswith("fuzz."))
    document = {
        "what": "hostile-input suite (tests/hostile): inputs tried per probe; fuzz.* are generated messages",
        "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"python": platform.python_version(), "system": platform.platform(), "cpus": os.cpu_count()},
        "generated_messages_total": generated,
        "counts": dict(sorted(merged.items())),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    return RESULTS
