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

from sqlalchemy import insert, text, update
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
    the conditional updates are what keeps a second scheduler out).  On
    PostgreSQL the whole claim is one statement (:func:`_claim_set`)."""
    now = now or utcnow()
    if session.get_bind().dialect.name == "postgresql":
        return _claim_set(session, settings, now, limit)
    return _claim_rows(session, settings, now, limit)


def _claim_rows(session: Session, settings: Settings, now: datetime, limit: int) -> list[int]:
    """:func:`claim_due` read into Python and written back grouped (SQLite,
    where a write transaction holds the whole database anyway)."""
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


# The claim as one PostgreSQL statement.  The same rule as the Python path
# above, step by step: pick the first ``limit`` due subscriptions' subscribers
# (``batch``); lock all their due subscriptions in id order (``due``: a second
# scheduler queues here, and once the first commits, PostgreSQL re-checks
# ``next_due_at <= now`` on the new row version and drops the row); move
# ``next_due_at`` only where it still holds the value read (``claimed``); one
# run per subscriber and period with a section per claimed subscription, and
# ``ON CONFLICT DO NOTHING`` on the unique (subscriber, period) for a period
# that already has its run -- the claimed subscription then adds nothing, its
# ``last_digest_at`` did not move.  Period keys, next slots and ``since`` are
# computed as ``period_key``, ``next_slot`` and ``_since`` do (the test
# compares the two paths row for row).  One round trip and no Python row
# objects: the per-row cost of the Python path (~1.3 ms of wall per
# subscription on a loaded database, mostly the runs' INSERT) is what made
# the scheduler pass half of a 10k digest run.
_ISO = """to_char({t} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN date_part('microseconds', {t})::bigint % 1000000 = 0 THEN ''
            ELSE to_char({t} AT TIME ZONE 'UTC', '.US') END || '+00:00'"""
_DUE_WHERE = """s.kind = :jobs AND s.status = :active AND s.next_due_at IS NOT NULL
        AND s.next_due_at <= :now AND p.status = :subscriber_active"""
_CLAIM_SQL = f"""
WITH batch AS (
    SELECT DISTINCT first.subscriber_id FROM (
        SELECT s.subscriber_id FROM subscription s JOIN subscriber p ON p.id = s.subscriber_id
        WHERE {_DUE_WHERE} ORDER BY s.next_due_at, s.id LIMIT :limit) AS first
), due AS (
    SELECT s.id, s.subscriber_id, s.next_due_at, s.frequency, s.last_digest_at
    FROM subscription s JOIN subscriber p ON p.id = s.subscriber_id
    WHERE {_DUE_WHERE} AND s.subscriber_id IN (SELECT subscriber_id FROM batch)
    ORDER BY s.id FOR UPDATE OF s
), claimed AS (
    UPDATE subscription s
    SET next_due_at = CASE WHEN due.frequency = :weekly THEN :next_weekly ELSE :next_daily END
    FROM due
    WHERE s.id = due.id AND s.next_due_at = due.next_due_at AND s.status = :active
    RETURNING due.id, due.subscriber_id,
        CASE WHEN due.frequency = :weekly
             THEN 'w:' || to_char(due.next_due_at AT TIME ZONE 'UTC', 'IYYY-"W"IW')
             ELSE 'd:' || to_char(due.next_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') END AS period_key,
        coalesce(due.last_digest_at, due.next_due_at
                 - CASE WHEN due.frequency = :daily THEN interval '1 day' ELSE interval '7 days' END) AS since
)
INSERT INTO digest_run (subscriber_id, period_key, state, sections, window_start, window_end, item_ids,
                        reason, created_at)
SELECT subscriber_id, period_key, :pending,
       json_agg(json_build_object('s', id, 'since', {_ISO.format(t="since")}) ORDER BY id),
       min(since), :now, '[]'::json, '', :created
FROM claimed GROUP BY subscriber_id, period_key ORDER BY subscriber_id, period_key
ON CONFLICT ON CONSTRAINT uq_digest_run_subscriber_period DO NOTHING
RETURNING id
"""


def _claim_set(session: Session, settings: Settings, now: datetime, limit: int) -> list[int]:
    """:func:`claim_due` on PostgreSQL: one statement (``_CLAIM_SQL``)."""
    session.flush()
    # Without nested loops: right after a bulk import the planner has no
    # statistics for the new rows, estimates one row everywhere and nests
    # scans of the whole table inside each other (3.7 s for a batch of 500
    # of 4,000 subscriptions; 40-70 ms with hash joins, with or without
    # statistics).  For this statement only.
    session.execute(text("SET LOCAL enable_nestloop = off"))
    run_ids = sorted(session.execute(text(_CLAIM_SQL), {
        "jobs": SubscriptionKind.JOBS.value, "active": SubscriptionStatus.ACTIVE.value,
        "subscriber_active": SubscriberStatus.ACTIVE.value, "now": now, "limit": limit,
        "weekly": Frequency.WEEKLY.value, "daily": Frequency.DAILY.value,
        "next_weekly": next_slot(now, Frequency.WEEKLY, settings),
        "next_daily": next_slot(now, Frequency.DAILY, settings),
        "pending": DigestState.PENDING.value, "created": utcnow(),
    }).scalars())
    session.execute(text("SET LOCAL enable_nestloop TO DEFAULT"))
    # Subscriptions this session has loaded read their new next_due_at.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Subscription):
            session.expire(obj, ["next_due_at"])
    return run_ids


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
