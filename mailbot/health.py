"""What this process says about its own parts: ``/healthz`` reads it.

Each long-running part (the intake writer thread, the queue worker, the
database) registers a probe: a function returning ``None`` when the part
works, else a short reason.  ``/healthz`` runs every probe of its process,
so a writer thread that died is reported as dead instead of the process
answering "ok" while every delivery waits for nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Probe = Callable[[], "str | None"]


class Health:
    """The probes of one process (one per :class:`~mailbot.context.Context`)."""

    def __init__(self) -> None:
        self._probes: dict[str, Probe] = {}
        self._lock = threading.Lock()

    def register(self, name: str, probe: Probe) -> None:
        with self._lock:
            self._probes[name] = probe

    def unregister(self, name: str) -> None:
        with self._lock:
            self._probes.pop(name, None)

    def report(self) -> dict[str, str]:
        """``{part: "ok" | reason}`` for every registered part."""
        with self._lock:
            probes = dict(self._probes)
        out: dict[str, str] = {}
        for name, probe in sorted(probes.items()):
            try:
                out[name] = probe() or "ok"
            except Exception as exc:  # a probe that fails is itself the answer
                out[name] = f"probe failed: {exc!r}"[:300]
        return out
