"""Job board actors: digests, code-update digests, bounces.

Thin, as every actor: each takes an id, asks ``mailbot.jobs`` to move that row
forward (in one transaction, safe to repeat) and sends the pokes it returns.
The scheduler sends claimed runs in batches (``send_digests``); digest
runs a dead worker left pending are re-poked by the reconciler
(``schedule.stale_runs`` in ``mailbot.services.recovery``); the run's
conditional pending -> sent update keeps the retry from sending twice.
"""

from __future__ import annotations

import dramatiq

from mailbot.context import current
from mailbot.jobs import code_updates, digest, digest_batch, subscriptions
from mailbot.services import Poke
from workflows.actors import RETRY, dispatch
from workflows.broker import SLOW


@dramatiq.actor(time_limit=120_000, **RETRY)
def send_digest(run_id: int) -> None:
    """Build and queue the digest (jobs or code updates) of one claimed run."""
    dispatch(digest.send_digest(current(), run_id))


@dramatiq.actor(time_limit=300_000, **RETRY, queue_name=SLOW)
def send_digests(run_ids: list[int]) -> None:
    """Build and queue the digests of a batch of claimed runs (one
    transaction, one insert); pokes one ``deliver_batch`` for the emails."""
    dispatch(digest_batch.send_digests(current(), run_ids))


@dramatiq.actor(time_limit=300_000, **RETRY, queue_name=SLOW)
def code_updates_digest(version_id: int) -> None:
    """A code-set version was imported: one run per interested subscription."""
    ctx = current()
    with ctx.db.session() as session:
        run_ids = code_updates.claim_runs(session, version_id)
    dispatch([Poke("send_digest", run_id) for run_id in run_ids])


@dramatiq.actor(time_limit=60_000, **RETRY)
def bounce_recorded(bounce_event_id: int) -> None:
    """Count a bounce against the subscriber; suspend at the threshold."""
    ctx = current()
    with ctx.db.session() as session:
        subscriptions.record_bounce(session, ctx.settings, bounce_event_id)
