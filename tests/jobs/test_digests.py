"""Digests: claimed once per period (even by two schedulers at once), listing
exactly the new matching jobs, skipped when empty, honouring unsubscribes and
bounces, and carrying one-click List-Unsubscribe headers."""

from __future__ import annotations

import threading
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from urllib.parse import unquote

import pytest

from sqlmodel import select

from mailbot.jobs import digest, links, schedule, subscriptions
from mailbot.jobs.criteria import parse_request
from mailbot.models.jobs import DigestRun, DigestState, Subscriber, SubscriberStatus, Subscription
from mailbot.models.mail import BounceEvent, OutboundMessage
from tests.jobs.support import NOW, active_subscription, add_job

DUE = NOW.replace(hour=7) + timedelta(days=1)     # next daily slot after NOW (07:00 UTC)
AFTER_DUE = DUE + timedelta(seconds=1)


def _message(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def _text(message) -> str:
    return message.get_body(("plain",)).get_content()


def test_next_slots_follow_the_configured_hour_and_weekday(settings):
    assert schedule.next_slot(NOW, "daily", settings) == DUE
    weekly = schedule.next_slot(NOW, "weekly", settings)
    assert weekly.weekday() == settings.jobs.weekly_digest_weekday and weekly.hour == 7 and weekly > NOW
    assert schedule.period_key(DUE, "daily") == "d:2026-11-25"
    assert schedule.period_key(weekly, "weekly") == "w:2026-W49"


def test_a_digest_lists_the_new_matching_jobs_grouped_with_unsubscribe_headers(ctx, db):
    with db.session() as s:
        sub = active_subscription(s, ctx.settings, "casey@example.org", "CPC jobs in Texas, daily")
        new_remote = add_job(s, "Remote Outpatient Coder", work_mode="remote", state="TX", credentials=["CPC"],
                             salary_min=55000, salary_max=65000, salary_period="year")
        new_austin = add_job(s, "Onsite Coder", work_mode="onsite", city="Austin", state="TX")
        add_job(s, "Remote CCS only", work_mode="remote", credentials=["CCS"])           # wrong credential
        add_job(s, "Remote Ohio", work_mode="remote", state="OH")                       # wrong state
        add_job(s, "Old remote", work_mode="remote", opened=NOW - timedelta(days=3))    # before the window
        add_job(s, "Expired remote", work_mode="remote", expires_at=NOW + timedelta(hours=1))
        run_ids = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
    assert len(run_ids) == 1
    [poke] = digest.send_digest(ctx, run_ids[0])
    assert poke.actor == "send_outbound"
    with db.read() as s:
        run = s.get(DigestRun, run_ids[0])
        out = s.get(OutboundMessage, poke.id)
        assert run.state == DigestState.SENT and run.outbound_id == out.id and out.kind == "digest"
        assert sorted(run.item_ids) == sorted([new_remote.id, new_austin.id])
        assert s.get(Subscription, sub.id).last_digest_at == AFTER_DUE
    message = _message(out.raw)
    assert message["Subject"] == "2 new jobs for you: jobs for CPC located in Texas, daily"
    assert message["To"] == "casey@example.org" and message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = [part.strip(" <>") for part in message["List-Unsubscribe"].split(",")]
    assert https.startswith(ctx.settings.service.public_url + "/unsubscribe/")
    assert mailto.startswith("mailto:jobs@mailbot.localhost?subject=UNSUBSCRIBE%20")
    token = https.rsplit("/", 1)[1]
    # The digest's one-click link and mailto stop every job digest of the subscriber.
    assert links.verify(ctx.settings, "unsubscribe", token, 60) == {"p": sub.subscriber_id, "s": None, "k": "jobs"}
    assert token in unquote(mailto)
    text = _text(message)
    assert f"=== jobs for CPC located in Texas, daily ({sub.reference}) ===" in text
    assert "== Remote ==" in text and "== On-site ==" in text
    assert "Remote Outpatient Coder -- Acme Health" in text and "$55,000-$65,000/year" in text
    for absent in ("Remote CCS only", "Remote Ohio", "Old remote", "Expired remote"):
        assert absent not in text
    html = message.get_body(("html",)).get_content()
    assert "style=" in html and "<style>" not in html        # CSS inlined
    assert 'href="https://acme.example/Remote-Outpatient-Coder"' in html


def test_two_schedulers_claim_each_subscription_once(ctx, db):
    with db.session() as s:
        ids = [active_subscription(s, ctx.settings, f"user{i}@example.org", "JOBS remote daily").id for i in range(40)]
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = [[], []]

    def scheduler(slot: int) -> None:
        barrier.wait()
        for _ in range(3):
            with db.session() as s:
                claimed[slot].extend(schedule.claim_due(s, ctx.settings, now=AFTER_DUE, limit=15))

    threads = [threading.Thread(target=scheduler, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as s:
        runs = s.exec(select(DigestRun)).all()
    assert len(claimed[0]) + len(claimed[1]) == 40 == len(runs)
    assert sorted(section["s"] for r in runs for section in r.sections) == sorted(ids)
    assert len({r.subscriber_id for r in runs}) == 40
    with db.session() as s:     # the same period again: nothing
        assert schedule.claim_due(s, ctx.settings, now=AFTER_DUE + timedelta(minutes=5)) == []
        subs = s.exec(select(Subscription)).all()
    assert {sub.next_due_at for sub in subs} == {DUE + timedelta(days=1)}


def test_running_a_digest_twice_queues_one_email(ctx, db):
    with db.session() as s:
        active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        add_job(s, "Remote Coder", work_mode="remote")
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
    first = digest.send_digest(ctx, run_id)
    assert len(first) == 1 and digest.send_digest(ctx, run_id) == []
    with db.read() as s:
        assert len(s.exec(select(OutboundMessage)).all()) == 1


def test_an_empty_digest_is_skipped_unless_configured(ctx, db):
    with db.session() as s:
        sub = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        add_job(s, "Onsite Coder", work_mode="onsite")
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
    assert digest.send_digest(ctx, run_id) == []
    with db.read() as s:
        run = s.get(DigestRun, run_id)
        assert run.state == DigestState.SKIPPED and run.reason == "no new matching jobs"
        assert s.exec(select(OutboundMessage)).all() == []
        # The window still moves on: the next digest starts where this one ended.
        assert s.get(Subscription, sub.id).last_digest_at == AFTER_DUE
    ctx.settings.jobs.skip_empty_digests = False
    with db.session() as s:
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE + timedelta(days=1))
    [poke] = digest.send_digest(ctx, run_id)
    with db.read() as s:
        assert _message(s.get(OutboundMessage, poke.id).raw)["Subject"].startswith("0 new jobs")


def test_an_unsubscribe_after_the_claim_is_honoured(ctx, db):
    with db.session() as s:
        sub = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        add_job(s, "Remote Coder", work_mode="remote")
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
        subscriptions.cancel(s, ctx.settings, sub.subscriber_id)
    assert digest.send_digest(ctx, run_id) == []
    with db.read() as s:
        assert s.get(DigestRun, run_id).state == DigestState.SKIPPED
        assert s.get(Subscriber, sub.subscriber_id).status == SubscriberStatus.UNSUBSCRIBED


def test_bounces_suspend_a_subscriber_at_the_threshold(ctx, db):
    with db.session() as s:
        sub = active_subscription(s, ctx.settings, "gone@example.org", "JOBS remote daily")

    def bounce(minutes: int, permanent: bool = True) -> int:
        with db.session() as s:
            # each bounce is of a different digest we sent (bounces count per bounced message)
            sent = OutboundMessage(kind="digest", to_addr="gone@example.org", raw=b"x", state="sent",
                                   message_id=f"<digest.{minutes}@mailbot.localhost>")
            s.add(sent)
            s.flush()
            event = BounceEvent(recipient="Gone@Example.org", status="5.1.1" if permanent else "4.2.2",
                                permanent=permanent, created_at=NOW + timedelta(minutes=minutes),
                                outbound_id=sent.id)
            s.add(event)
            s.flush()
        with db.session() as s:
            subscriptions.record_bounce(s, ctx.settings, event.id)
        return event.id

    first = bounce(1)
    bounce(2, permanent=False)                        # a delay notice is not a bounce
    second = bounce(3)
    for event_id in (first, second, first):           # replays count once
        with db.session() as s:
            subscriptions.record_bounce(s, ctx.settings, event_id)
    with db.read() as s:
        subscriber = s.get(Subscriber, sub.subscriber_id)
        assert (subscriber.bounce_count, subscriber.status) == (2, SubscriberStatus.ACTIVE)
    bounce(4)
    with db.session() as s:
        assert s.get(Subscriber, sub.subscriber_id).status == SubscriberStatus.SUSPENDED
        assert schedule.claim_due(s, ctx.settings, now=AFTER_DUE) == []
    # Confirming again (the address works after all) starts the count afresh.
    with db.session() as s:
        again = subscriptions.subscribe(s, "gone@example.org", parse_request("JOBS hybrid daily"),
                                        now=NOW + timedelta(hours=1))
        subscriptions.confirm(s, ctx.settings, again.id, again.confirm_token, now=NOW + timedelta(hours=1))
    with db.read() as s:
        subscriber = s.get(Subscriber, sub.subscriber_id)
        assert subscriber.status == SubscriberStatus.ACTIVE
    bounce(61)
    with db.read() as s:
        assert s.get(Subscriber, sub.subscriber_id).bounce_count == 1


def test_unconfirmed_requests_expire_and_stop_counting_against_the_limit(ctx, db):
    with db.session() as s:
        for state in ["Ohio", "Texas", "Iowa", "Utah", "Maine", "Idaho", "Kansas", "Nevada", "Oregon", "Alaska"]:
            subscriptions.subscribe(s, "victim@example.org", parse_request(f"JOBS remote in {state}"), now=NOW)
    with db.session() as s:
        with pytest.raises(subscriptions.SubscriptionError):
            subscriptions.subscribe(s, "victim@example.org", parse_request("JOBS hybrid"), now=NOW)
    later = NOW + timedelta(hours=ctx.settings.jobs.confirm_hours, minutes=1)
    with db.session() as s:
        assert subscriptions.expire_unconfirmed(s, ctx.settings, later) == subscriptions.MAX_SUBSCRIPTIONS
        assert subscriptions.subscribe(s, "victim@example.org", parse_request("JOBS hybrid"), now=later).id


def test_a_digest_queued_but_not_delivered_is_withdrawn_by_an_unsubscribe(ctx, db):
    from mailbot.models.mail import OutboundState
    from mailbot.services import delivery

    with db.session() as s:
        sub = active_subscription(s, ctx.settings, "casey@example.org", "JOBS remote daily")
        add_job(s, "Remote Coder", work_mode="remote")
        [run_id] = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
    [poke] = digest.send_digest(ctx, run_id)
    with db.session() as s:
        subscriptions.cancel(s, ctx.settings, sub.subscriber_id, [sub.id])
    assert delivery.deliver(ctx, poke.id) == "skipped"
    with db.read() as s:
        out = s.get(OutboundMessage, poke.id)
        assert out.state == OutboundState.FAILED and "unsubscribed" in out.last_error
