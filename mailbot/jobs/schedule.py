"""When digests are due, and claiming them exactly once.

A job subscription carries ``next_due_at``.  :func:`claim_due` moves it to
the next slot with a conditional update (``WHERE next_due_at = <the value we
read>``): of two schedulers reading the same row only one update matches, and
only that one records a :class:`DigestRun` for the period.  A subscriber's
subscriptions due in the same period share one run (one email, one section
each); the run row is unique on ``(subscriber_id, period_key)``, so even a
replayed claim for the same period cannot create a second digest.  Missed periods (the scheduler was
down) are not sent one by one: the next claim covers everything since the
last digest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, update
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


def _since(due_at: datetime, frequency: str, last_digest_at: datetime | None) -> str:
    start = last_digest_at or (due_at - PERIOD.get(frequency, PERIOD[Frequency.WEEKLY]))
    return start.isoformat()


def claim_due(session: Session, settings: Settings, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Claim due job subscriptions (``limit`` or a few more: every due one of
    each subscriber taken) and record one run per subscriber and period;
    returns the new DigestRun ids.

    A subscriber's subscriptions due for the same period (``d:2026-11-25``,
    ``w:2026-W48``) become sections of one run, so one email.  Each
    subscription is still claimed on its own with the conditional update of
    its ``next_due_at`` (see :func:`_claim`); rows are locked in id order so
    two schedulers queue on them and never deadlock.  A
    subscription claimed for a period whose run already exists (another
    scheduler took its siblings first, a replayed claim) adds nothing: its
    ``last_digest_at`` did not move, so its jobs go into its next digest.

    Runs in the caller's transaction; commit promptly (the row locks taken by
    the conditional updates are what keeps a second scheduler out)."""
    now = now or utcnow()
    columns = (Subscription.id, Subscription.subscriber_id, Subscription.next_due_at, Subscription.frequency,
               Subscription.last_digest_at)
    due_where = (
        Subscription.kind == SubscriptionKind.JOBS,
        Subscription.status == SubscriptionStatus.ACTIVE,
        Subscription.next_due_at.is_not(None),
        Subscription.next_due_at <= now,
        Subscriber.status == SubscriberStatus.ACTIVE,
    )
    first = session.exec(
        select(*columns).join(Subscriber, Subscriber.id == Subscription.subscriber_id).where(*due_where)
        .order_by(Subscription.next_due_at, Subscription.id).limit(limit)
    ).all()
    if not first:
        return []
    subscriber_ids = sorted({row[1] for row in first})
    # The batch ends mid-subscriber more often than not: take the rest of
    # each subscriber's due subscriptions too, so one email has them all.
    due = session.exec(
        select(*columns).join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(*due_where, Subscription.subscriber_id.in_(subscriber_ids))
        .order_by(Subscription.subscriber_id, Subscription.id)
    ).all()
    keys = {(subscriber_id, period_key(due_at, frequency)) for _, subscriber_id, due_at, frequency, _ in due}
    # Runs already recorded for these periods (a replayed claim): one query.
    existing = set(session.exec(
        select(DigestRun.subscriber_id, DigestRun.period_key)
        .where(DigestRun.subscriber_id.in_(subscriber_ids), DigestRun.period_key.in_({key for _, key in keys}))
    ).all()) & keys
    claimed = _claim(session, settings, now, due)
    # Plain rows and one multi-row INSERT: building SQLModel instances cost
    # ~4 ms each (pydantic default factories), most of a claim's time.
    runs: dict[tuple[int, str], dict] = {}
    for sub_id, subscriber_id, due_at, frequency, last_digest_at in due:
        key = (subscriber_id, period_key(due_at, frequency))
        if sub_id not in claimed or key in existing:
            continue  # another scheduler took it, or this period already has its run
        section = {"s": sub_id, "since": _since(due_at, frequency, last_digest_at)}
        run = runs.get(key)
        if run is None:
            runs[key] = {"subscriber_id": subscriber_id, "subscription_id": None, "period_key": key[1],
                         "state": DigestState.PENDING.value, "sections": [section], "window_end": now,
                         "item_ids": [], "outbound_id": None, "reason": "", "created_at": utcnow(),
                         "finished_at": None}
        else:
            run["sections"] = [*run["sections"], section]
    if not runs:
        return []
    for run in runs.values():
        # The widest window of its sections (shown in the admin pages; each
        # section lists the jobs since its own subscription's last digest).
        run["window_start"] = min(datetime.fromisoformat(section["since"]) for section in run["sections"])
    table = DigestRun.__table__
    result = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(runs.values()))
    return [run_id for (run_id,) in result]


def _claim(session: Session, settings: Settings, now: datetime, due: list) -> set[int]:
    """The conditional updates of ``next_due_at``, grouped: one UPDATE per
    (due time, frequency) -- digest slots are a few distinct times, so a
    batch of 500 costs a few statements, not 500 -- each still matching only
    rows whose ``next_due_at`` is the value read.  The rows are locked first
    in id order, so two schedulers queue on them and never deadlock."""
    ids = sorted(row[0] for row in due)
    session.exec(select(Subscription.id).where(Subscription.id.in_(ids)).order_by(Subscription.id).with_for_update())
    groups: dict[tuple[datetime, str], list[int]] = {}
    for sub_id, _, due_at, frequency, _ in due:
        groups.setdefault((due_at, frequency), []).append(sub_id)
    claimed: set[int] = set()
    for (due_at, frequency), group in groups.items():
        # (ORM-enabled, so rows already loaded in this session see the new value.)
        claimed.update(session.execute(
            update(Subscription)
            .where(Subscription.id.in_(group), Subscription.next_due_at == due_at,
                   Subscription.status == SubscriptionStatus.ACTIVE)
            .values(next_due_at=next_slot(now, frequency, settings))
            .returning(Subscription.id)
        ).scalars())
    return claimed


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
    pending (the worker died, or the poke was lost) -> ``send_digests``, in batches."""
    from mailbot.jobs.digest_batch import batches  # (digest_batch imports the models this module does)

    return batches(pending_runs(session, utcnow() - age))
