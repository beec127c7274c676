"""Job digests in batches: many claimed runs, one transaction, one insert.

:func:`send_digests` does for a batch of runs what ``digest.send_digest``
does for one -- the same decisions (:func:`digest.plan_run`), the same
exactly-once rule -- with the database work grouped: the runs, their
subscribers and subscriptions are read with one query each, the emails are
inserted with one multi-row INSERT, and the runs and subscriptions are
updated with one executemany each, all in one transaction.  Each email is
assembled by ``digest_wire`` (header bytes written once per process) and
stored with ``delivery.queue_wires`` (one INSERT).  It returns one
``deliver_batch`` poke for the batch's emails, which claims them by batch
and hands them to the relay over one pipelined session
(``services.delivery.deliver_batch``).

Exactly once: the runs are read ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; a
SQLite write transaction holds the whole database), so two workers given
the same run never both build it -- the second skips it, and the first's
commit moves it out of ``pending``.  The final conditional update
(``WHERE state = 'pending'``) is checked too; a mismatch rolls the whole
batch back and each run goes through the one-run path, which settles each
race on its own.  Code-update runs and runs without sections keep the
one-run path.
"""

from __future__ import annotations

import logging

from sqlalchemy import bindparam, update
from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.jobs import digest
from mailbot.models import utcnow
from mailbot.models.jobs import DigestRun, DigestState, Subscriber, Subscription
from mailbot.services import Poke
from mailbot.services.delivery import queue_wires

log = logging.getLogger(__name__)

# Runs per send_digests message: big enough that the per-transaction and
# per-poke costs vanish, small enough that a batch commits in about a second
# and the two workers share a scheduler pass.
BATCH = 200


class _Raced(Exception):
    """A run of the batch left ``pending`` under us; redo the batch run by run."""


def batches(run_ids: list[int], size: int = BATCH) -> list[Poke]:
    """``send_digests`` pokes for ``run_ids``, ``size`` runs each."""
    return [Poke("send_digests", run_ids[i:i + size]) for i in range(0, len(run_ids), size)]


def send_digests(ctx: Context, run_ids: list[int]) -> list[Poke]:
    """Build and queue the digests of the claimed runs ``run_ids``; returns
    the pokes that deliver them (and the one-run pokes for code updates).
    Safe to run twice, and concurrently with any other sender of the same runs."""
    try:
        with ctx.db.session() as session:
            pokes, single = _send(ctx, session, sorted(set(run_ids)))
    except _Raced:
        log.info("digest batch raced with another worker; sending its runs one by one")
        return [poke for run_id in run_ids for poke in digest.send_digest(ctx, run_id)]
    return pokes + [poke for run_id in single for poke in digest.send_digest(ctx, run_id)]


def _send(ctx: Context, session: Session, run_ids: list[int]) -> tuple[list[Poke], list[int]]:
    settings = ctx.settings
    runs = session.exec(
        select(DigestRun).where(DigestRun.id.in_(run_ids), DigestRun.state == DigestState.PENDING)
        .order_by(DigestRun.id).with_for_update(skip_locked=True)
    ).all()
    single = [run.id for run in runs if run.period_key.startswith("codes:") or not run.sections]
    runs = [run for run in runs if run.id not in set(single)]
    if not runs:
        return [], single
    subscribers = {s.id: s for s in session.exec(
        select(Subscriber).where(Subscriber.id.in_({run.subscriber_id for run in runs}))).all()}
    subscriptions = {s.id: s for s in session.exec(
        select(Subscription).where(Subscription.id.in_({entry["s"] for run in runs for entry in run.sections}))
    ).all()}
    plans = [(run, digest.plan_run(settings, session, run, subscribers[run.subscriber_id],
                                   _planned(run, subscriptions))) for run in runs]
    sending = [(run, plan) for run, plan in plans if plan.wire is not None]
    outbound_ids = queue_wires(session, [plan.wire for _, plan in sending], kind="digest")
    outbound_of = {run.id: oid for (run, _), oid in zip(sending, outbound_ids)}
    now = utcnow()
    finished = session.execute(
        update(DigestRun.__table__)
        .where(DigestRun.__table__.c.id == bindparam("run_id"),
               DigestRun.__table__.c.state == DigestState.PENDING.value)
        .values(state=bindparam("new_state"), reason=bindparam("new_reason"),
                outbound_id=bindparam("new_outbound"), item_ids=bindparam("new_items"),
                sections=bindparam("new_sections"), finished_at=now),
        [{"run_id": run.id, "new_state": str(plan.state), "new_reason": plan.reason[:500],
          "new_outbound": outbound_of.get(run.id), "new_items": plan.item_ids,
          "new_sections": plan.record if plan.record is not None else run.sections} for run, plan in plans],
    )
    if session.get_bind().dialect.supports_sane_multi_rowcount and finished.rowcount != len(plans):
        raise _Raced()
    advanced = [{"sub_id": sub.id, "new_last": run.window_end} for run, plan in plans for sub in plan.advanced]
    if advanced:
        table = Subscription.__table__
        session.execute(update(table).where(table.c.id == bindparam("sub_id"))
                        .values(last_digest_at=bindparam("new_last")), advanced)
    # The ORM objects were read only; their changes went through the statements above.
    session.expunge_all()
    return ([Poke("deliver_batch", outbound_ids)] if outbound_ids else []), single


def _planned(run: DigestRun, subscriptions: dict[int, Subscription]):
    from datetime import datetime

    return [(subscriptions[entry["s"]], datetime.fromisoformat(entry["since"]) if entry.get("since") else None)
            for entry in run.sections if entry["s"] in subscriptions]
