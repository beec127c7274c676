"""Re-enqueue unfinished work found in the database.

Runs once at start-up (after a crash, a Redis flush or an embedded restart
the queue may have lost messages) and then every ``broker.reconcile_seconds``.
Several reconcilers may run at once (one per worker process); the actors are
idempotent, so a duplicate poke costs a little work and nothing else.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from mailbot.context import Context
from mailbot.services import recovery
from workflows.actors import dispatch

log = logging.getLogger(__name__)


def reconcile_once(ctx: Context, age: timedelta | None = None) -> int:
    """Poke everything left unfinished for longer than ``age``; returns the count."""
    if age is None:
        age = timedelta(seconds=ctx.settings.broker.stuck_after_seconds)
    with ctx.db.read() as session:
        pokes = recovery.unfinished(session, age)
    dispatch(pokes)
    if pokes:
        log.info("reconciler re-enqueued %d item(s)", len(pokes))
    return len(pokes)


class Reconciler(threading.Thread):
    """Background thread: reconcile at start (everything, any age) and then
    periodically (work older than ``stuck_after_seconds``)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(name="mailbot-reconciler", daemon=True)
        self.ctx = ctx
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            reconcile_once(self.ctx, timedelta(0))
        except Exception:
            log.exception("start-up reconcile failed")
        while not self.stopping.wait(self.ctx.settings.broker.reconcile_seconds):
            try:
                reconcile_once(self.ctx)
            except Exception:
                log.exception("reconcile failed; will try again")

    def stop(self) -> None:
        self.stopping.set()
