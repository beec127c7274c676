"""The answer engine inside the consultation pipeline (offline drafter): instant facts
in the acknowledgement, intents recorded on the consultation, a follow-up answered with
its thread's history."""

from __future__ import annotations

from sqlmodel import select

from mailbot.context import Context, configure
from mailbot.models import Consultation, Draft
from mailbot.services import consultations as svc
from tests.consultation.conftest import consult_settings
from tests.consultation.drive import drive, question, receive


def _ctx(tmp_path, db, sink, **overrides) -> Context:
    return configure(Context(consult_settings(tmp_path, db, sink, None, **overrides), db=db))


def _ack_text(sink) -> str:
    ack = next(m for m in sink.messages if m.message["X-Mailbot-Kind"] == "ack")
    return ack.message.get_body(("plain",)).get_content()


def test_the_ack_states_validity_and_successors_of_named_codes(tmp_path, codes_db, db, sink):
    ctx = _ctx(tmp_path, db, sink)
    receive(ctx, question("Depo-Medrol", "J1030 was denied for 80 mg given DOS 11/04/2026, what now?"))
    text = " ".join(_ack_text(sink).split())
    assert "J1030" in text and "valid until 2024-03-31" in text and "J1010" in text
    assert "not yet the answer" in text and "date of service 2026-11-04, as stated" in text


def test_the_ack_facts_can_be_switched_off(tmp_path, codes_db, db, sink):
    ctx = _ctx(tmp_path, db, sink, **{"codes.instant_facts_in_ack": False})
    receive(ctx, question("Depo-Medrol", "J1030 was denied for 80 mg, what now?"))
    assert "J1010" not in _ack_text(sink) and "What the code sets say" not in _ack_text(sink)


def test_the_intents_are_recorded_and_the_draft_has_no_label(tmp_path, codes_db, db, sink):
    ctx = _ctx(tmp_path, db, sink)
    receive(ctx, question("Depo-Medrol", "J1030 was denied for 80 mg Depo-Medrol given 11/4/2026, what now?"))
    with db.read() as session:
        c = session.exec(select(Consultation)).one()
        draft = session.exec(select(Draft)).one()
    assert [i["intent"] for i in c.intents][:2] == ["valid", "replaced"]
    assert all(i["trigger"] for i in c.intents)
    assert draft.source == "offline" and draft.body.startswith("Report J1010 x 80 units")
    assert "[Offline draft" not in draft.body and draft.confidence not in (None, 0.3)


def test_a_follow_up_is_answered_with_the_thread_history(tmp_path, codes_db, db, sink, reviewer):
    ctx = _ctx(tmp_path, db, sink)
    receive(ctx, question("Depo-Medrol", "J1030 is gone - what replaced it? DOS 11/04/2026"))
    with db.read() as session:
        c = session.exec(select(Consultation)).one()
    drive(ctx, svc.request_info(ctx, c.id, reviewer, "Report J1010. What dose was given?", c.version))
    asked = sink.messages[-1].message
    receive(ctx, question(f"Re: Depo-Medrol [#Q-{c.id}]", "It was 80 mg.", message_id="<q2@example.org>",
                          headers={"In-Reply-To": asked["Message-ID"]}))
    with db.read() as session:
        drafts = session.exec(select(Draft).where(Draft.consultation_id == c.id).order_by(Draft.id)).all()
        reopened = session.get(Consultation, c.id)
    assert reopened.state == "awaiting_review"
    assert drafts[-1].body.startswith("Report J1010 x 80 units")
    assert reopened.date_of_service.isoformat() == "2026-11-04"
