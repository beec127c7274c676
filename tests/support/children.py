"""Child processes that end with the test run.

A service a test or a benchmark starts (``mailbot smtpd``, ``mailbot
worker``, Dovecot, a Redis to kill) is stopped by its own ``finally``.  When the run
itself is killed -- Ctrl-C twice, a CI timeout, ``pkill pytest`` -- no
``finally`` runs, and the children kept polling Redis and holding ports for
as long as the machine was up (three ``mailbot`` processes outlived a killed
run by half an hour and skewed every benchmark taken meanwhile).  Linux can
tie a child to its parent: ``prctl(PR_SET_PDEATHSIG)`` sends the child a
signal when the process that started it dies.  (Strictly: when the *thread*
that started it ends, so every caller starts its services from the thread
that lives as long as they should -- the test's, or the benchmark's main
thread.)
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(then: Callable[[], None] | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child is killed when this process dies.

    ``then``: another ``preexec_fn`` to run after (a memory limit, say)."""
    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if then is not None:
            then()
    return preexec
