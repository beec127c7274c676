"""Drafting in a process of its own, for the embedded ``serve``.

In ``serve`` the SMTP listener, routing, command replies and drafting share
one interpreter.  Drafting a big question is seconds of pure-Python CPU
(redaction, code and fact extraction, the answer engine, verification), and
while it runs every other thread gets only its share of the GIL: a HELP sent
after an 8 MB question waited 1-3.6 s for its reply (issue 17, point 15).

Here :func:`~mailbot.services.consultation_drafting.make_draft` -- the only
CPU-heavy step, and one that reads the database but writes nothing -- runs
in child processes (``broker.draft_processes``, one by default).  The
consultation's state machine stays where it was: the slow-lane thread that
called ``run_draft`` waits for the child's :class:`DraftResult` (without the
GIL) and stores it as before, so retries, leases and attempt counting are
unchanged.  A child that dies (out of memory, killed) fails only the draft
it was working on: the pool is rebuilt and the actor retries it later, and
the attempt counter quarantines a question that kills its drafter every time.

The children are started with ``spawn`` (forking a process that already runs
threads is unsafe), load the code knowledge in the background at once, and
ask the kernel to end them when ``serve`` dies, so a ``kill -9`` of the
parent leaves no drafter behind.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from mailbot.config import Settings
from mailbot.context import Context, configure, current
from mailbot.services.consultation_state import TryLater

if TYPE_CHECKING:
    from mailbot.services.consultation_drafting import DraftResult

log = logging.getLogger(__name__)

# Longer than any draft may take (an LLM with retries), shorter than the
# actor's own time limit, so the waiting thread gives up first and cleanly.
WAIT_SECONDS = 14 * 60


class DraftProcesses:
    """``make_draft`` on a pool of child processes; callable like it."""

    def __init__(self, settings: Settings, processes: int) -> None:
        self.settings = settings
        self.processes = processes
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_child, initargs=(self.settings,))

    def __call__(self, ctx: Context, cid: int, *, force_offline: bool = False) -> DraftResult:
        with self._lock:
            pool = self._pool
        try:
            return pool.submit(_draft, cid, force_offline).result(timeout=WAIT_SECONDS)
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:        # the first to notice rebuilds it
                    log.error("a drafting process died while drafting consultation %s; restarting it", cid)
                    self._pool = self._new_pool()
            raise TryLater(f"the drafting process died while drafting consultation {cid}") from None

    def problem(self) -> str | None:
        """``/healthz``: a pool that cannot take work."""
        with self._lock:
            broken = getattr(self._pool, "_broken", False)
        return f"drafting processes broken: {broken}" if broken else None

    def shutdown(self) -> None:
        with self._lock:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _start_child(settings: Settings) -> None:
    from mailbot.codes.knowledge import warm_in_background

    _end_with_parent()
    warm_in_background(configure(Context(settings)).db.read)


def _draft(cid: int, force_offline: bool) -> DraftResult:
    from mailbot.services.consultation_drafting import make_draft

    return make_draft(current(), cid, force_offline=force_offline)


def _end_with_parent() -> None:
    """PR_SET_PDEATHSIG: SIGTERM this process when its parent dies (Linux)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux/glibc: the pool's own shutdown still ends it
        pass
