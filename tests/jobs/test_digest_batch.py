"""Digests in batches (``jobs.digest_batch`` + ``delivery.deliver_batch``):
the same emails as the one-run path, each run sent exactly once even when
two workers get the same batch, and delivery over one relay session that
marks what went out and leaves the rest for retries."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlmodel import select

from mailbot.context import Context
from mailbot.jobs import digest, digest_batch, schedule
from mailbot.models.jobs import DigestRun, DigestState, Subscription
from mailbot.models.mail import OutboundMessage, OutboundState
from mailbot.services import delivery
from tests.conftest import make_settings
from tests.jobs.digest_support import parsed_text
from tests.jobs.support import NOW, active_subscription, add_job
from tests.support.relay_sink import RelaySink

DUE = NOW.replace(hour=7) + timedelta(days=1)
AFTER_DUE = DUE + timedelta(seconds=1)


def _claimed(ctx, db, people: int) -> tuple[list[int], dict[str, Subscription]]:
    with db.session() as s:
        subs = {f"p{i}@example.org": active_subscription(s, ctx.settings, f"p{i}@example.org", "JOBS remote daily")
                for i in range(people)}
        add_job(s, "Remote Anywhere Coder", work_mode="remote")
        add_job(s, "Remote Auditor", work_mode="remote", credentials=["CPC"])
        run_ids = schedule.claim_due(s, ctx.settings, now=AFTER_DUE)
    return run_ids, subs


def _digests(db) -> list[OutboundMessage]:
    with db.read() as s:
        return list(s.exec(select(OutboundMessage).where(OutboundMessage.kind == "digest")
                           .order_by(OutboundMessage.id)).all())


def test_a_batch_queues_one_email_per_run_like_the_one_run_path_and_a_rerun_adds_none(ctx, db):
    run_ids, subs = _claimed(ctx, db, 5)
    pokes = digest_batch.send_digests(ctx, run_ids)
    assert [p.actor for p in pokes] == ["deliver_batch"] and len(pokes[0].id) == 5
    mails = _digests(db)
    assert sorted(m.to_addr for m in mails) == sorted(subs)
    assert sorted(pokes[0].id) == [m.id for m in mails]
    subject, text = parsed_text(mails[0].raw)
    assert subject == "2 new jobs for you: remote jobs, daily"
    assert "Remote Anywhere Coder --" in text and "Remote Auditor --" in text
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in mails[0].raw
    with db.read() as s:
        runs = s.exec(select(DigestRun).where(DigestRun.id.in_(run_ids))).all()
        assert {r.state for r in runs} == {DigestState.SENT}
        assert {r.outbound_id for r in runs} == {m.id for m in mails}
        assert all(len(r.item_ids) == 2 and r.sections[0]["jobs"] == r.item_ids for r in runs)
        assert {s.get(Subscription, sub.id).last_digest_at for sub in subs.values()} == {AFTER_DUE}
    # Run again (a retried or duplicated poke): nothing new, in either path.
    assert digest_batch.send_digests(ctx, run_ids) == []
    assert all(digest.send_digest(ctx, run_id) == [] for run_id in run_ids)
    assert len(_digests(db)) == 5


def test_a_stopped_subscription_in_the_batch_is_skipped_and_the_others_still_go(ctx, db):
    run_ids, subs = _claimed(ctx, db, 3)
    with db.session() as s:
        sub = s.get(Subscription, subs["p1@example.org"].id)
        sub.status = "cancelled"
        s.add(sub)
    [poke] = digest_batch.send_digests(ctx, run_ids)
    assert len(poke.id) == 2
    assert sorted(m.to_addr for m in _digests(db)) == ["p0@example.org", "p2@example.org"]
    with db.read() as s:
        states = {r.subscriber_id: (r.state, r.reason) for r in s.exec(select(DigestRun)).all()}
    assert sorted(state for state, _ in states.values()) == ["sent", "sent", "skipped"]
    assert any("subscriptions stopped" in reason for _, reason in states.values())


def test_two_workers_sending_the_same_batch_queue_each_digest_once(ctx, db):
    run_ids, subs = _claimed(ctx, db, 20)
    results: list[list] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        results.append(digest_batch.send_digests(ctx, run_ids))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    mails = _digests(db)
    assert sorted(m.to_addr for m in mails) == sorted(subs)           # 20 emails, not 40
    queued = [i for pokes in results for p in pokes if p.actor == "deliver_batch" for i in p.id]
    queued += [p.id for pokes in results for p in pokes if p.actor == "send_outbound"]
    assert sorted(queued) == [m.id for m in mails]                     # each poked once


def test_deliver_batch_sends_over_one_session_marks_sent_and_never_twice(ctx, db, tmp_path):
    run_ids, subs = _claimed(ctx, db, 30)
    [poke] = digest_batch.send_digests(ctx, run_ids)
    with RelaySink() as relay:
        relay_ctx = Context(make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": relay.port}), db=db)
        assert delivery.deliver_batch(relay_ctx, poke.id) == []
        assert delivery.deliver_batch(relay_ctx, poke.id) == []       # a duplicate poke sends nothing
        assert sorted(m.recipients[0] for m in relay.messages) == sorted(subs)
    assert {(m.state, m.attempts, m.transport) for m in _digests(db)} == {(OutboundState.SENT, 1, "relay")}


def test_deliver_batch_leaves_refused_messages_pending_for_retry_then_sends_them_once(ctx, db, tmp_path):
    run_ids, subs = _claimed(ctx, db, 4)
    [poke] = digest_batch.send_digests(ctx, run_ids)
    with RelaySink() as relay:
        relay_ctx = Context(make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": relay.port}), db=db)
        relay.answer("451 4.3.0 try again later")
        assert sorted(delivery.deliver_batch(relay_ctx, poke.id)) == sorted(poke.id)
        assert {m.state for m in _digests(db)} == {OutboundState.PENDING}
        relay.answer(None)
        with db.session() as s:       # the backoff has passed
            for m in s.exec(select(OutboundMessage)).all():
                m.next_attempt_at = None
                s.add(m)
        assert delivery.deliver_batch(relay_ctx, poke.id) == []
        assert [delivery.deliver(relay_ctx, i) for i in poke.id] == ["skipped"] * 4
        assert sorted(m.recipients[0] for m in relay.messages) == sorted(subs)


def test_deliver_batch_records_a_5xx_as_a_permanent_failure(ctx, db, tmp_path):
    run_ids, _ = _claimed(ctx, db, 2)
    [poke] = digest_batch.send_digests(ctx, run_ids)
    with RelaySink() as relay:
        relay_ctx = Context(make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": relay.port}), db=db)
        relay.answer("550 5.1.1 no such user")
        assert delivery.deliver_batch(relay_ctx, poke.id) == []
    assert {(m.state, "550" in m.last_error) for m in _digests(db)} == {(OutboundState.FAILED, True)}


# Pipelined batches (issue 16, point 4): one session, one round trip per
# message, an outcome per message.

def _relay_ctx(tmp_path, db, relay) -> Context:
    return Context(make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": relay.port}), db=db)


def _sent_once(relay, subs) -> bool:
    recipients = [m.recipients[0] for m in relay.messages]
    return sorted(recipients) == sorted(subs) and len(set(recipients)) == len(recipients)


def test_a_pipelined_batch_hands_each_digest_to_the_relay_once_byte_for_byte(ctx, db, tmp_path):
    run_ids, subs = _claimed(ctx, db, 45)              # three chunks of MARK_EVERY
    [poke] = digest_batch.send_digests(ctx, run_ids)
    with RelaySink(pipelining=True) as relay:
        relay_ctx = _relay_ctx(tmp_path, db, relay)
        assert delivery.deliver_batch(relay_ctx, poke.id) == []
        assert delivery.deliver_batch(relay_ctx, poke.id) == []       # a duplicate poke sends nothing
        assert _sent_once(relay, subs)
        stored = {m.to_addr: m.raw for m in _digests(db)}
        assert all(m.raw.replace(b"\r\n", b"\n") == stored[m.recipients[0]].replace(b"\r\n", b"\n")
                   for m in relay.messages)
    assert {(m.state, m.attempts, m.last_error) for m in _digests(db)} == {(OutboundState.SENT, 1, "")}


def test_a_refused_recipient_in_a_pipelined_batch_fails_that_digest_only(ctx, db, tmp_path):
    run_ids, subs = _claimed(ctx, db, 6)
    [poke] = digest_batch.send_digests(ctx, run_ids)
    with RelaySink(pipelining=True, refuse={"p2@example.org": "550 5.1.1 no such user",
                                            "p4@example.org": "452 4.2.2 mailbox full"}) as relay:
        retry = delivery.deliver_batch(_relay_ctx(tmp_path, db, relay), poke.id)
        assert sorted(m.recipients[0] for m in relay.messages) == ["p0@example.org", "p1@example.org",
                                                                  "p3@example.org", "p5@example.org"]
    states = {m.to_addr: (m.state, m.last_error) for m in _digests(db)}
    assert states["p2@example.org"][0] == OutboundState.FAILED and "550" in states["p2@example.org"][1]
    assert states["p4@example.org"][0] == OutboundState.PENDING and "452" in states["p4@example.org"][1]
    assert [m.id for m in _digests(db) if m.to_addr == "p4@example.org"] == retry
    assert {state for addr, (state, _) in states.items() if addr not in ("p2@example.org", "p4@example.org")} \
        == {OutboundState.SENT}


def test_a_relay_breaking_off_mid_batch_loses_nothing_and_sends_nothing_twice(ctx, db, tmp_path):
    run_ids, subs = _claimed(ctx, db, 10)
    [poke] = digest_batch.send_digests(ctx, run_ids)
    with RelaySink(pipelining=True, break_after=3) as relay:
        relay_ctx = _relay_ctx(tmp_path, db, relay)
        retry = delivery.deliver_batch(relay_ctx, poke.id)
        assert len(relay.messages) == 3 and len(retry) == 7
        assert sum(m.state == OutboundState.SENT for m in _digests(db)) == 3
        relay.handler.break_after = None                   # the relay is back
        with db.session() as s:                            # and the backoff has passed
            for m in s.exec(select(OutboundMessage)).all():
                m.next_attempt_at = None
                s.add(m)
        assert [delivery.deliver(relay_ctx, i) for i in retry] == ["sent"] * 7
        assert delivery.deliver_batch(relay_ctx, poke.id) == []
        assert _sent_once(relay, subs)
    assert {m.state for m in _digests(db)} == {OutboundState.SENT}


class _Killed(BaseException):
    """The worker process dies (no except clause of ours catches it)."""


def test_a_worker_dying_mid_batch_loses_nothing_and_sends_nothing_twice(ctx, db, tmp_path, monkeypatch):
    run_ids, subs = _claimed(ctx, db, 12)
    [poke] = digest_batch.send_digests(ctx, run_ids)
    monkeypatch.setattr(delivery, "MARK_EVERY", 5)
    real_send_many = delivery._send_many
    calls = []

    def dies_before_the_second_chunk(conn, messages):
        calls.append(len(messages))
        if len(calls) == 2:
            raise _Killed()
        return real_send_many(conn, messages)

    with RelaySink(pipelining=True) as relay:
        relay_ctx = _relay_ctx(tmp_path, db, relay)
        monkeypatch.setattr(delivery, "_send_many", dies_before_the_second_chunk)
        try:
            delivery.deliver_batch(relay_ctx, poke.id)
        except _Killed:
            pass
        monkeypatch.setattr(delivery, "_send_many", real_send_many)
        assert len(relay.messages) == 5
        assert delivery.deliver_batch(relay_ctx, poke.id) == []       # the redelivered poke: claimed rows are left alone
        assert len(relay.messages) == 5
        # The reconciler's retry of what the dead worker claimed: each once, noted as unfinished.
        left = [m.id for m in _digests(db) if m.state == OutboundState.PENDING]
        assert len(left) == 7
        assert [delivery.deliver(relay_ctx, i) for i in left] == ["sent"] * 7
        assert _sent_once(relay, subs)
    assert {m.state for m in _digests(db)} == {OutboundState.SENT}


def test_two_workers_delivering_the_same_batch_send_each_digest_once(ctx, db, tmp_path):
    run_ids, subs = _claimed(ctx, db, 40)
    [poke] = digest_batch.send_digests(ctx, run_ids)
    with RelaySink(pipelining=True) as relay:
        relay_ctx = _relay_ctx(tmp_path, db, relay)
        start = threading.Barrier(3)

        def worker(send) -> None:
            start.wait()
            send()

        threads = [threading.Thread(target=worker, args=(lambda: delivery.deliver_batch(relay_ctx, poke.id),))
                   for _ in range(2)]
        threads.append(threading.Thread(target=worker, args=(lambda: [delivery.deliver(relay_ctx, i)
                                                                      for i in poke.id[::3]],)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert _sent_once(relay, subs)
    assert {m.state for m in _digests(db)} == {OutboundState.SENT}
