"""What the reconciler and the embedded default rely on: lost pokes are found
again, endless drafting stops, and with no relay and no LLM an answer still
reaches the Maildir outbox."""

from __future__ import annotations

import mailbox
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from mailbot.context import Context, configure
from mailbot.models import Consultation, InboundMessage, QuarantineItem, utcnow
from mailbot.services import Poke, recovery
from mailbot.services import consultations as svc
from tests.conftest import make_settings
from tests.consultation.drive import drive, question, receive
from tests.support.fake_llm import FakeLlm


def test_the_embedded_default_answers_into_the_outbox_without_relay_or_llm(tmp_path, codes_db, db, reviewer):
    ctx = configure(Context(make_settings(tmp_path, db), db=db))
    receive(ctx, question("Modifier question", "Does 20610 need modifier RT? DOS 2026-02-02"))
    with db.read() as session:
        c = session.exec(select(Consultation)).one()
    assert c.state == "awaiting_review"
    drive(ctx, svc.approve(ctx, c.id, reviewer, "Yes, append RT to 20610 for the right knee.", c.version))
    outbox = mailbox.Maildir(ctx.settings.outbox_path, create=False)
    kinds = sorted(m["X-Mailbot-Kind"] for m in outbox)
    assert kinds == ["ack", "answer"]
    with db.read() as session:
        assert session.get(Consultation, c.id).state == "sent"


def test_a_lost_follow_up_poke_is_found_by_the_reconciler(cctx, llm, sink, reviewer, db):
    llm.script(FakeLlm.json({"answer": "20610 is fine.", "cited_codes": [{"code": "20610"}]}))
    receive(cctx, question("Knee", "Is 20610 ok? DOS 2026-02-02"))
    with db.read() as session:
        c = session.exec(select(Consultation)).one()
    drive(cctx, svc.approve(cctx, c.id, reviewer, "20610 is fine.", c.version))
    answer_id = sink.messages[-1].message["Message-ID"]

    from mailbot.mail import intake
    from mailbot.services import inbound

    follow = question("Re: Knee", "What about both knees?", message_id="<lost@example.org>",
                      headers={"In-Reply-To": answer_id})
    iid = intake.accept(cctx.db, follow.as_bytes(), source="smtp", envelope_from="casey@example.org",
                        envelope_to=["ask@mailbot.localhost"])
    assert inbound.process(cctx, iid) == [Poke("consultation_followup", iid)]   # ... and the poke is lost
    import workflows.consultation  # noqa: F401  (registers the recovery rule)

    with db.read() as session:
        found = recovery.unfinished(session, timedelta(0))
    assert Poke("consultation_followup", iid) in found
    drive(cctx, [Poke("consultation_followup", iid)])
    with db.read() as session:
        assert session.get(Consultation, c.id).state == "awaiting_review"
        assert Poke("consultation_followup", iid) not in recovery.unfinished(session, timedelta(0))


def test_drafting_that_keeps_dying_ends_failed_and_quarantined(cctx, llm, sink, db):
    receive(cctx, question("Knee", "Is 20610 ok?"))
    with db.session() as session:
        c = session.exec(select(Consultation)).one()
        session.exec(update(Consultation).where(Consultation.id == c.id).values(
            state="drafting", attempts=svc.MAX_DRAFT_ATTEMPTS, state_changed_at=utcnow() - timedelta(hours=1)))
    drive(cctx, [Poke("advance_consultation", c.id)])
    with db.read() as session:
        failed = session.get(Consultation, c.id)
        item = session.exec(select(QuarantineItem).where(QuarantineItem.stage == "drafting")).one()
    assert failed.state == "failed" and "attempts" in failed.failure_reason and item.ref_id == c.id


def test_a_stuck_draft_is_retried_only_after_its_lease(cctx, llm, sink, db):
    receive(cctx, question("Knee", "Is 20610 ok?"))
    with db.session() as session:
        c = session.exec(select(Consultation)).one()
        session.exec(update(Consultation).where(Consultation.id == c.id).values(
            state="drafting", attempts=1, state_changed_at=utcnow()))
    with db.read() as session:
        assert Poke("advance_consultation", c.id) in recovery.unfinished(session, timedelta(0))
    requests = len(llm.requests)
    drive(cctx, [Poke("advance_consultation", c.id)])      # an attempt is still running: no second LLM call
    assert len(llm.requests) == requests
    with db.session() as session:
        assert session.get(Consultation, c.id).state == "drafting"
        session.exec(update(Consultation).where(Consultation.id == c.id).values(
            state_changed_at=utcnow() - svc.draft_lease(cctx) - timedelta(seconds=1)))
    drive(cctx, [Poke("advance_consultation", c.id)])
    with db.read() as session:
        assert session.get(Consultation, c.id).state == "awaiting_review"
        assert session.exec(select(InboundMessage)).one().consultation_id == c.id


def test_a_follow_up_during_drafting_abandons_the_draft_in_flight(cctx, llm, sink, db):
    from mailbot.services import consultation_steps

    receive(cctx, question("Knee", "Is 20610 ok? DOS 2026-02-02"))
    with db.session() as session:
        c = session.exec(select(Consultation)).one()
        session.exec(update(Consultation).where(Consultation.id == c.id).values(state="drafting", attempts=0))
    answer_id = sink.messages[-1].message["Message-ID"]
    # The asker adds a fact while the (slow) draft is running ...
    from mailbot.mail import intake
    from mailbot.services import inbound

    follow = question("Re: Knee", "Forgot: it was the left knee.", message_id="<more@example.org>",
                      headers={"In-Reply-To": answer_id})
    iid = intake.accept(cctx.db, follow.as_bytes(), source="smtp", envelope_from="casey@example.org",
                        envelope_to=["ask@mailbot.localhost"])
    inbound.process(cctx, iid)
    assert svc.followup(cctx, iid) == [Poke("advance_consultation", c.id)]
    # ... so the draft that started before it is dropped when it finishes.
    with db.read() as session:
        assert session.get(Consultation, c.id).state == "acknowledged"
    assert consultation_steps.run_draft(cctx, c.id) == []
    drive(cctx, [Poke("advance_consultation", c.id)])
    assert "left knee" in str(llm.requests[-1])


def test_a_follow_up_waits_while_the_approved_answer_is_in_flight(cctx, llm, sink, reviewer, db):
    receive(cctx, question("Knee", "Is 20610 ok? DOS 2026-02-02"))
    with db.session() as session:
        c = session.exec(select(Consultation)).one()
        session.exec(update(Consultation).where(Consultation.id == c.id).values(state="approved"))
        inbound_id = session.exec(select(InboundMessage)).one().id
    with pytest.raises(svc.TryLater):
        svc.followup(cctx, inbound_id)


def test_a_temporary_relay_failure_is_retried_and_sends_once(cctx, llm, sink, reviewer, db):
    from mailbot.models import OutboundMessage

    receive(cctx, question("Knee", "Is 20610 ok? DOS 2026-02-02"))
    with db.read() as session:
        c = session.exec(select(Consultation)).one()
    sink.answer("451 4.3.0 try again later")
    send, advance = svc.approve(cctx, c.id, reviewer, "20610 is fine.", c.version)
    drive(cctx, [send])
    with db.session() as session:
        out = session.get(OutboundMessage, send.id)
        assert out.state == "pending" and out.attempts == 1 and "451" in out.last_error
        assert out.next_attempt_at is not None
        out.next_attempt_at = utcnow() - timedelta(seconds=1)        # the backoff has passed
        session.add(out)
    with pytest.raises(svc.NotYetDelivered):
        svc.advance(cctx, c.id)
    sink.answer(None)
    with db.read() as session:
        pokes = recovery.unfinished(session, timedelta(0))
    assert send in pokes and advance in pokes
    drive(cctx, pokes)
    drive(cctx, pokes)   # redelivered pokes change nothing
    assert [m.message["X-Mailbot-Kind"] for m in sink.messages].count("answer") == 1
    with db.read() as session:
        assert session.get(Consultation, c.id).state == "sent"
