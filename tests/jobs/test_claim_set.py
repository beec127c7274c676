"""The claim of due digests as one statement (PostgreSQL) decides exactly
what the row-by-row claim decides: the same runs with the same sections and
windows, the same subscriptions moved on, nothing for a period that already
has its run.  On SQLite both names are the row-by-row path."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlmodel import select

from mailbot.jobs import schedule
from mailbot.models.jobs import DigestRun, Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from tests.jobs.support import NOW, active_subscription

DUE = NOW.replace(hour=7) + timedelta(days=1)     # the next daily slot after NOW
AFTER_DUE = DUE + timedelta(seconds=1)


def _mixed(s, settings) -> dict[str, Subscription]:
    subs = {
        "casey-remote": active_subscription(s, settings, "casey@example.org", "JOBS remote daily"),
        "casey-texas": active_subscription(s, settings, "casey@example.org", "CPC jobs in Texas, daily"),
        "casey-weekly": active_subscription(s, settings, "casey@example.org", "JOBS remote weekly"),
        "robin": active_subscription(s, settings, "robin@example.org", "JOBS remote daily"),
        "gone": active_subscription(s, settings, "gone@example.org", "JOBS remote daily"),
        "paused": active_subscription(s, settings, "paused@example.org", "JOBS remote daily"),
        "lee": active_subscription(s, settings, "lee@example.org", "JOBS remote daily"),
        "late": active_subscription(s, settings, "late@example.org", "JOBS remote daily"),
    }
    s.exec(update(Subscription).where(Subscription.id == subs["casey-weekly"].id)
           .values(next_due_at=DUE - timedelta(days=2)))
    s.exec(update(Subscription).where(Subscription.id == subs["robin"].id)
           .values(last_digest_at=DUE - timedelta(days=3, microseconds=-123456)))
    s.exec(update(Subscription).where(Subscription.id == subs["late"].id)
           .values(next_due_at=DUE + timedelta(days=1)))              # not due yet
    s.exec(update(Subscriber).where(Subscriber.id == subs["gone"].subscriber_id)
           .values(status=SubscriberStatus.UNSUBSCRIBED))
    s.exec(update(Subscription).where(Subscription.id == subs["paused"].id)
           .values(status=SubscriptionStatus.PAUSED))
    s.add(DigestRun(subscriber_id=subs["lee"].subscriber_id, period_key="d:2026-11-25", sections=[]))
    return subs


def _outcome(s) -> tuple[list, list]:
    runs = sorted((r.subscriber_id, r.period_key, r.state, r.sections, r.window_start, r.window_end, r.item_ids,
                   r.reason, r.outbound_id, r.finished_at) for r in s.exec(select(DigestRun)).all())
    subs = sorted((sub.id, sub.next_due_at, sub.last_digest_at)
                  for sub in s.exec(select(Subscription).execution_options(populate_existing=True)).all())
    return runs, subs


def test_the_set_claim_decides_what_the_row_by_row_claim_decides(ctx, db):
    with db.session() as s:
        subs = _mixed(s, ctx.settings)
    with db.session() as s:
        row_ids = schedule._claim_rows(s, ctx.settings, AFTER_DUE, 500)
        by_rows = _outcome(s)
        s.rollback()
    with db.session() as s:
        set_ids = schedule.claim_due(s, ctx.settings, AFTER_DUE)
        by_set = _outcome(s)
    assert len(row_ids) == len(set_ids) == 3          # casey daily, casey weekly, robin
    assert by_set == by_rows
    runs = {(r[0], r[1]): r for r in by_set[0]}
    casey = subs["casey-remote"].subscriber_id
    assert [x["s"] for x in runs[(casey, "d:2026-11-25")][3]] == [subs["casey-remote"].id, subs["casey-texas"].id]
    assert (casey, "w:2026-W48") in runs
    [robin] = runs[(subs["robin"].subscriber_id, "d:2026-11-25")][3]
    assert robin["since"] == (DUE - timedelta(days=3, microseconds=-123456)).isoformat()
    due_next = {sub_id: due for sub_id, due, _ in by_set[1]}
    assert due_next[subs["lee"].id] == DUE + timedelta(days=1)          # claimed; its period already had a run
    assert due_next[subs["gone"].id] == DUE and due_next[subs["paused"].id] == DUE


def test_batches_keep_a_subscribers_subscriptions_together_and_claim_each_once(ctx, db):
    with db.session() as s:
        ids = [active_subscription(s, ctx.settings, f"user{i // 2}@example.org",
                                   "JOBS remote daily" if i % 2 else "CPC jobs in Texas, daily").id
               for i in range(14)]
        loaded = s.get(Subscription, ids[0])
        batches = []
        while batch := schedule.claim_due(s, ctx.settings, AFTER_DUE, limit=3):
            batches.append(batch)
        assert loaded.next_due_at == DUE + timedelta(days=1)   # a loaded row reads the claim
    with db.read() as s:
        runs = s.exec(select(DigestRun)).all()
    assert len(runs) == 7 == sum(map(len, batches)) and len(batches) >= 3
    assert sorted(x["s"] for r in runs for x in r.sections) == sorted(ids)
    assert all(len(r.sections) == 2 for r in runs)
