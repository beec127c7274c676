"""The digest scheduler: a thread in every worker process.

Each tick (every ``SCHEDULER_SECONDS``) it

1. expires open postings past their closing date, and subscription
   requests left unconfirmed past ``jobs.confirm_hours``;
2. claims the job subscriptions whose ``next_due_at`` has passed
   (``mailbot.jobs.schedule.claim_due``: conditional updates, one statement
   per batch on PostgreSQL, so
   any number of schedulers in any number of processes can run at once
   without two claiming the same period), one run per subscriber and
   period, and pokes ``send_digests`` per batch of runs;
3. creates the code-update runs for newly imported code-set versions.

Claims are committed before the pokes go out; a poke lost after the commit
is found again by the reconciler (``schedule.stale_runs``).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from mailbot.context import Context
from mailbot.jobs import board, code_updates, digest_batch, schedule, subscriptions
from mailbot.models.base import utcnow
from mailbot.services import Poke
from workflows.actors import dispatch

log = logging.getLogger(__name__)

SCHEDULER_SECONDS = 60
BATCH = 500   # claims per transaction: short transactions, short row locks
# On PostgreSQL a claim is one statement whose cost is mostly the scan for
# the due rows, so bigger batches: 100k subscriptions claimed in 9.5 s in
# batches of 5,000 against 60 s in batches of 500 (bench/claim_pass.py); a
# batch still commits in about half a second and its pokes go out then.
PG_BATCH = 5000


def tick(ctx: Context, now: datetime | None = None) -> list[Poke]:
    """One scheduling pass; returns (and sends) the pokes it made.

    Every claim of the pass uses the same ``now``: it is the window end of
    the runs claimed, and digests of one window share one job index per
    worker (``digest.index_for``) -- a clock read per batch of 500 made a
    new window, and a 0.4 s index build, for every batch."""
    now = now or utcnow()
    pokes: list[Poke] = []
    with ctx.db.session() as session:
        expired = board.expire_overdue(session, now)
        unconfirmed = subscriptions.expire_unconfirmed(session, ctx.settings, now)
    if expired or unconfirmed:
        log.info("expired %d job posting(s), %d unconfirmed subscription(s)", expired, unconfirmed)
    limit = PG_BATCH if ctx.db.engine.dialect.name == "postgresql" else BATCH
    while True:
        with ctx.db.session() as session:
            run_ids = schedule.claim_due(session, ctx.settings, now, limit=limit)
        batch = digest_batch.batches(run_ids)
        dispatch(batch)
        pokes.extend(batch)
        if not run_ids:     # (a batch claims a subscriber's siblings too, so it may hold fewer runs than BATCH)
            break
    with ctx.db.session() as session:
        run_ids = code_updates.claim_runs(session, now=now)
    batch = [Poke("send_digest", run_id) for run_id in run_ids]
    dispatch(batch)
    pokes.extend(batch)
    return pokes


class Scheduler(threading.Thread):
    """Runs :func:`tick` at start and then every ``SCHEDULER_SECONDS``."""

    def __init__(self, ctx: Context, interval: float = SCHEDULER_SECONDS) -> None:
        super().__init__(name="mailbot-scheduler", daemon=True)
        self.ctx = ctx
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            try:
                tick(self.ctx)
            except Exception:
                log.exception("digest scheduling failed; will try again")
            if self.stopping.wait(self.interval):
                return

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(10)
