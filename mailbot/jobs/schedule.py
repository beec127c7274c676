"""When digests are due, and claiming them exactly once.

A job subscription carries ``next_due_at``.  :func:`claim_due` moves it to
the next slot with a conditional update (``WHERE next_due_at = <the value we
read>``): of two schedulers reading the same row only one update matches, and
only that one records a :class:`DigestRun` for the period.  The run row has a
unique ``(subscription_id, period_key)``, so even a replayed claim for the
same period cannot create a second digest.  Missed periods (the scheduler was
down) are not sent one by one: the next claim covers everything since the
last digest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from mailbot.config import Settings
from mailbot.models.base import utcnow
from mailbot.services import Poke
from mailbot.models.jobs import (
    DigestRun,
    DigestState,
    Frequency,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionKind,
    SubscriptionStatus,
)

PERIOD = {Frequency.DAILY: timedelta(days=1), Frequency.WEEKLY: timedelta(days=7)}


def next_slot(now: datetime, frequency: str, settings: Settings) -> datetime:
    """The first digest time strictly after ``now``."""
    hour = settings.jobs.digest_hour_utc
    slot = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if frequency == Frequency.WEEKLY:
        slot += timedelta(days=(settings.jobs.weekly_digest_weekday - slot.weekday()) % 7)
        while slot <= now:
            slot += timedelta(days=7)
        return slot
    while slot <= now:
        slot += timedelta(days=1)
    return slot


def period_key(slot: datetime, frequency: str) -> str:
    if frequency == Frequency.WEEKLY:
        year, week, _ = slot.isocalendar()
        return f"w:{year}-W{week:02d}"
    return f"d:{slot.date().isoformat()}"


def claim_due(session: Session, settings: Settings, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Claim up to ``limit`` due job subscriptions; returns the new DigestRun ids.

    Runs in the caller's transaction; commit promptly (the row locks taken by
    the conditional updates are what keeps a second scheduler out)."""
    now = now or utcnow()
    due = session.exec(
        select(Subscription.id, Subscription.next_due_at, Subscription.frequency, Subscription.last_digest_at)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(
            Subscription.kind == SubscriptionKind.JOBS,
            Subscription.status == SubscriptionStatus.ACTIVE,
            Subscription.next_due_at.is_not(None),
            Subscription.next_due_at <= now,
            Subscriber.status == SubscriberStatus.ACTIVE,
        )
        .order_by(Subscription.next_due_at)
        .limit(limit)
    ).all()
    if not due:
        return []
    # Runs already recorded for these periods (a replayed claim): one query.
    keys = {(sub_id, period_key(due_at, frequency)) for sub_id, due_at, frequency, _ in due}
    existing = set(session.exec(
        select(DigestRun.subscription_id, DigestRun.period_key)
        .where(DigestRun.subscription_id.in_([sub_id for sub_id, *_ in due]),
               DigestRun.period_key.in_({key for _, key in keys}))
    ).all()) & keys
    runs: list[DigestRun] = []
    for sub_id, due_at, frequency, last_digest_at in due:
        claimed = session.exec(
            update(Subscription)
            .where(Subscription.id == sub_id, Subscription.next_due_at == due_at,
                   Subscription.status == SubscriptionStatus.ACTIVE)
            .values(next_due_at=next_slot(now, frequency, settings))
        ).rowcount
        key = period_key(due_at, frequency)
        if claimed != 1 or (sub_id, key) in existing:
            continue  # another scheduler took it, or this period already has its run
        runs.append(DigestRun(subscription_id=sub_id, period_key=key, state=DigestState.PENDING,
                              window_start=last_digest_at or (due_at - PERIOD.get(frequency, PERIOD[Frequency.WEEKLY])),
                              window_end=now))
    session.add_all(runs)
    session.flush()
    return [run.id for run in runs]


# Re-pokes per reconciler pass.  During a big run most pending runs are only
# waiting in the queue; poking all of them every minute would multiply the
# backlog, so the oldest are re-poked first, a bounded number at a time.
REPOKE_LIMIT = 1000


def pending_runs(session: Session, older_than: datetime, limit: int = REPOKE_LIMIT) -> list[int]:
    """Runs claimed but not finished (a worker died, a poke was lost), oldest first."""
    return list(session.exec(
        select(DigestRun.id).where(DigestRun.state == DigestState.PENDING, DigestRun.created_at < older_than)
        .order_by(DigestRun.created_at, DigestRun.id).limit(limit)
    ).all())


def stale_runs(session: Session, age: timedelta) -> list[Poke]:
    """Recovery rule: digest runs claimed longer than ``age`` ago and still
    pending (the worker died, or the poke was lost) -> ``send_digest``."""
    return [Poke("send_digest", run_id) for run_id in pending_runs(session, utcnow() - age)]
