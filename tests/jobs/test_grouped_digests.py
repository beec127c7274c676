"""One job digest email per subscriber and period: every job subscription due
in that period is a section of it, a job is listed once, empty sections are
left out, and the run stays exactly-once (reruns, retries, two schedulers)."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlmodel import select

from mailbot.jobs import digest, schedule, subscriptions
from mailbot.models.jobs import DigestRun, DigestState, Subscription
from mailbot.models.mail import OutboundMessage, OutboundState
from tests.jobs.digest_support import parsed_text
from tests.jobs.support import NOW, active_subscription, add_job

DUE = NOW.replace(hour=7) + timedelta(days=1)     # the next daily slot after NOW
AFTER_DUE = DUE + timedelta(seconds=1)


def _digests(db) -> list[OutboundMessage]:
    with db.read() as s:
        return list(s.exec(select(OutboundMessage).where(OutboundMessage.kind == "digest")
                           .order_by(OutboundMessage.id)).all())


def test_two_daily_subscriptions_make_one_email_with_a_section_each(ctx, db):
    with db.session() as s:
        remote = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        texas = active_subscription(s, ctx.settings, "casey@example.org", "CPC jobs in Texas, daily")
        other = active_subscription(s, ctx.settings, "robin@example.org", "JOBS remote daily")
        both = add_job(s, "Remote Anywhere Coder", work_mode="remote")                  # matches both searches
        austin = add_job(s, "Austin Clinic Coder", work_mode="onsite", city="Austin", state="TX",
                         credentials=["CPC"])
        run_ids = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
    assert len(run_ids) == 2                                       # one per subscriber, not per subscription
    with db.read() as s:
        run = s.exec(select(DigestRun).where(DigestRun.subscriber_id == remote.subscriber_id)).one()
    assert run.period_key == "d:2026-11-25" and [x["s"] for x in run.sections] == [remote.id, texas.id]
    pokes = [poke for run_id in run_ids for poke in digest.send_digest(ctx, run_id)]
    assert len(pokes) == 2
    mails = {m.to_addr: m for m in _digests(db)}
    assert set(mails) == {"casey@example.org", "robin@example.org"}
    subject, text = parsed_text(mails["casey@example.org"].raw)
    assert subject == "2 new jobs for you: 2 of your job searches"
    first = text.index(f"=== remote jobs, daily ({remote.reference}) ===")
    second = text.index(f"=== jobs for CPC located in Texas, daily ({texas.reference}) ===")
    assert first < text.index("Remote Anywhere Coder --") < second < text.index("Austin Clinic Coder --")
    # Listed once, in the first section; the second names it.
    assert text.count("Remote Anywhere Coder --") == 1
    assert f"Also matches (listed above): Remote Anywhere Coder ({both.reference})" in text
    html = mails["casey@example.org"].raw.decode()
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in html
    with db.read() as s:
        run = s.get(DigestRun, run.id)
        assert run.state == DigestState.SENT and run.item_ids == [both.id, austin.id]
        assert [(x["jobs"], x["also"]) for x in run.sections] == [([both.id], []), ([austin.id], [both.id])]
        assert {s.get(Subscription, i).last_digest_at for i in (remote.id, texas.id)} == {AFTER_DUE}
    assert parsed_text(mails["robin@example.org"].raw)[0] == "1 new job for you: remote jobs, daily"
    assert other.subscriber_id != remote.subscriber_id


def test_reruns_retries_and_a_second_scheduler_send_nothing_more(ctx, db):
    with db.session() as s:
        subs = [active_subscription(s, ctx.settings, f"user{i}@example.org", f"JOBS {mode} daily")
                for i in range(12) for mode in ("remote", "hybrid", "onsite")]
        add_job(s, "Remote Coder", work_mode="remote")
        add_job(s, "Hybrid Coder", work_mode="hybrid", city="Austin", state="TX")
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = [[], []]

    def scheduler(slot: int) -> None:
        barrier.wait()
        for _ in range(8):         # small batches end in the middle of a subscriber's subscriptions
            with db.session() as s:
                claimed[slot].extend(schedule.claim_due(s, ctx.settings, now=AFTER_DUE, limit=4))

    threads = [threading.Thread(target=scheduler, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_ids = claimed[0] + claimed[1]
    with db.read() as s:
        runs = s.exec(select(DigestRun)).all()
    assert len(run_ids) == len(set(run_ids)) == 12 == len(runs)
    assert all(len(run.sections) == 3 for run in runs)              # every subscriber whole in one run
    assert sorted(x["s"] for run in runs for x in run.sections) == sorted(sub.id for sub in subs)
    for run_id in run_ids:                                          # a worker, then a retry of each
        assert len(digest.send_digest(ctx, run_id)) == 1
        assert digest.send_digest(ctx, run_id) == []
    with db.session() as s:                                         # the scheduler again in the same period
        assert schedule.claim_due(s, ctx.settings, now=AFTER_DUE + timedelta(hours=3)) == []
    assert len(_digests(db)) == 12
    assert sorted(m.to_addr for m in _digests(db)) == sorted(f"user{i}@example.org" for i in range(12))


def test_a_replayed_claim_for_a_period_with_a_run_adds_no_second_digest(ctx, db):
    with db.session() as s:
        first = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        add_job(s, "Remote Coder", work_mode="remote")
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
        # A second subscription of the same subscriber due in the same period
        # after the run was recorded (say it was resumed with an old due time).
        second = active_subscription(s, ctx.settings, "casey@example.org", "JOBS hybrid daily")
        s.get(Subscription, second.id).next_due_at = DUE
        assert schedule.claim_due(s, ctx.settings, now=AFTER_DUE) == []
        assert s.get(Subscription, second.id).next_due_at == DUE + timedelta(days=1)
        assert s.get(Subscription, second.id).last_digest_at is None     # its jobs wait for its next digest
    assert len(digest.send_digest(ctx, run_id)) == 1
    assert len(_digests(db)) == 1 and first.id


def test_empty_sections_are_left_out_and_an_empty_digest_is_skipped(ctx, db):
    with db.session() as s:
        remote = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        ohio = active_subscription(s, ctx.settings, "casey@example.org", "JOBS onsite in Ohio daily")
        add_job(s, "Remote Coder", work_mode="remote")
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
    [poke] = digest.send_digest(ctx, run_id)
    subject, text = parsed_text(_digests(db)[0].raw)
    assert subject == "1 new job for you: remote jobs, daily"
    assert remote.reference in text and ohio.reference not in text
    # Next day nothing new: skipped, and both windows move on.
    with db.session() as s:
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE + timedelta(days=1))
    assert digest.send_digest(ctx, run_id) == []
    with db.read() as s:
        run = s.get(DigestRun, run_id)
        assert (run.state, run.reason) == (DigestState.SKIPPED, "no new matching jobs")
        assert {s.get(Subscription, i).last_digest_at for i in (remote.id, ohio.id)} == {
            AFTER_DUE + timedelta(days=1)}
    # Not skipping: the all-empty digest goes out and says what was searched.
    ctx.settings.jobs.skip_empty_digests = False
    with db.session() as s:
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE + timedelta(days=2))
    [poke] = digest.send_digest(ctx, run_id)
    subject, text = parsed_text(_digests(db)[-1].raw)
    assert subject.startswith("0 new jobs for you") and remote.reference in text and ohio.reference in text


def test_each_section_lists_the_jobs_since_its_own_last_digest(ctx, db):
    with db.session() as s:
        old = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        new = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote CPC daily")
        s.get(Subscription, old.id).last_digest_at = NOW - timedelta(hours=1)
        s.get(Subscription, new.id).last_digest_at = NOW - timedelta(days=3)
        add_job(s, "Fresh Remote", work_mode="remote")                                   # after both
        add_job(s, "Older Remote", work_mode="remote", opened=NOW - timedelta(days=2))   # only in the new one's window
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
    digest.send_digest(ctx, run_id)
    _, text = parsed_text(_digests(db)[0].raw)
    second = text.index(new.reference + ") ===")
    assert text.index("Fresh Remote --") < second < text.index("Older Remote --")


def test_a_paused_subscription_drops_out_of_a_claimed_digest(ctx, db):
    with db.session() as s:
        remote = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        hybrid = active_subscription(s, ctx.settings, "casey@example.org", "JOBS hybrid daily")
        add_job(s, "Remote Coder", work_mode="remote")
        add_job(s, "Hybrid Coder", work_mode="hybrid", state="TX")
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
        subscriptions.pause(s, ctx.settings, "casey@example.org", [hybrid.id])
    digest.send_digest(ctx, run_id)
    _, text = parsed_text(_digests(db)[0].raw)
    assert "Remote Coder --" in text and "Hybrid Coder" not in text and hybrid.reference not in text
    with db.read() as s:
        assert s.get(Subscription, hybrid.id).last_digest_at is None     # its jobs wait until it resumes
        assert s.get(Subscription, remote.id).last_digest_at == AFTER_DUE


def test_a_queued_digest_is_withdrawn_only_when_all_its_searches_are_cancelled(ctx, db):
    from mailbot.services import delivery

    with db.session() as s:
        remote = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        hybrid = active_subscription(s, ctx.settings, "casey@example.org", "JOBS hybrid daily")
        add_job(s, "Remote Coder", work_mode="remote")
        add_job(s, "Hybrid Coder", work_mode="hybrid", state="TX")
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
    [poke] = digest.send_digest(ctx, run_id)
    with db.session() as s:             # the manage page cancels one search: the other still wants its jobs
        subscriptions.cancel(s, ctx.settings, remote.subscriber_id, [remote.id])
        assert s.get(OutboundMessage, poke.id).state == OutboundState.PENDING
    with db.session() as s:
        subscriptions.cancel(s, ctx.settings, remote.subscriber_id, [hybrid.id])
    assert delivery.deliver(ctx, poke.id) == "skipped"


def test_a_daily_and_a_weekly_subscription_get_separate_digests_on_the_weekly_day(ctx, db):
    with db.session() as s:
        daily = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        weekly = active_subscription(s, ctx.settings, "casey@example.org", "JOBS hybrid weekly")
        add_job(s, "Remote Coder", work_mode="remote")
        add_job(s, "Hybrid Coder", work_mode="hybrid", state="TX")
        weekly_slot = s.get(Subscription, weekly.id).next_due_at
        s.get(Subscription, daily.id).next_due_at = weekly_slot
        s.get(Subscription, daily.id).last_digest_at = NOW - timedelta(hours=1)
        run_ids = schedule.claim_due(s, ctx.settings, now=weekly_slot + timedelta(seconds=1))
    with db.read() as s:
        runs = [s.get(DigestRun, run_id) for run_id in run_ids]
    assert sorted(run.period_key[0] for run in runs) == ["d", "w"]
    for run_id in run_ids:
        digest.send_digest(ctx, run_id)
    assert sorted(parsed_text(m.raw)[0] for m in _digests(db)) == [
        "1 new job for you: hybrid jobs, weekly", "1 new job for you: remote jobs, daily"]
