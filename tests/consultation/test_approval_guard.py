"""Verification guards sending (issue 13 point 5, issue 15): approval is
refused, with the reason, for an answer that recommends a header code, a
terminated or not-yet-valid code, leaves an NCCI pair unaddressed, or still
carries the offline label; a reviewer may override with a reason that is
audited.  Invented codes stay blocked with no override."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from mailbot.drafting.verify import Verification, approval_problems
from mailbot.models import AuditEvent, Consultation, Draft
from mailbot.services import consultations as svc
from tests.consultation.drive import drive
from tests.consultation.test_pipeline import ANSWER, _consultation, _kinds, ask

DATED = ("Patient seen 03/15/2026, DOS 03/15/2026. Low back pain, which ICD-10 code?")


def _refused(cctx, cid, reviewer, body, version):
    with pytest.raises(svc.ApprovalRefused) as caught:
        svc.approve(cctx, cid, reviewer, body, version)
    return caught.value.problems


def test_a_recommended_header_code_is_refused_with_the_reason(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm, text=DATED)
    problems = _refused(cctx, c.id, reviewer, "Keep using M54.5 for low back pain.", c.version)
    assert [(p.kind, p.code) for p in problems] == [("header", "M54.5")]
    assert "header" in problems[0].reason and "billable child" in problems[0].reason
    assert _kinds(sink) == ["ack"]                                   # nothing sent
    assert _consultation(db).state == "awaiting_review"              # nothing moved


def test_a_header_code_named_only_as_not_to_report_is_fine(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm, text=DATED)
    drive(cctx, svc.approve(cctx, c.id, reviewer,
                            "M54.5 is a header code and is not billable; report M54.50 for low back pain.",
                            c.version))
    assert _kinds(sink) == ["ack", "answer"]


def test_a_terminated_code_is_refused_and_the_reason_names_the_date(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm, text=DATED)
    problems = _refused(cctx, c.id, reviewer, "Bill J1030 x 1 for the 40 mg injection.", c.version)
    assert [(p.kind, p.code) for p in problems] == [("terminated", "J1030")]
    assert "2026-03-15" in problems[0].reason


def test_an_unaddressed_ncci_pair_is_refused_and_addressing_it_passes(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm)
    problems = _refused(cctx, c.id, reviewer, "Report 20610 and 99213.", c.version)
    assert [p.kind for p in problems] == ["ncci"] and "20610" in problems[0].code
    drive(cctx, svc.approve(cctx, c.id, reviewer,
                            "Report 20610 and 99213 with modifier 25 on the E/M; the NCCI edit allows it.",
                            c.version))
    assert _kinds(sink) == ["ack", "answer"]


def test_the_offline_label_left_in_the_text_is_refused(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm)
    label = "[Offline draft: composed from the code knowledge base without an LLM. Review and rewrite before sending.]"
    problems = _refused(cctx, c.id, reviewer, label + "\n\nUse modifier 25 on 99213 with 20610.", c.version)
    assert [p.kind for p in problems] == ["offline_label"]


def test_an_override_with_a_reason_sends_and_is_audited(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm, text=DATED)
    body = "Keep using M54.5 for low back pain."
    drive(cctx, svc.approve(cctx, c.id, reviewer, body, c.version,
                            override_reason="Asker bills a payer that still accepts the header; told them."))
    assert _kinds(sink) == ["ack", "answer"]
    with db.read() as session:
        override = session.exec(select(AuditEvent).where(AuditEvent.action == "approval_override")).one()
    assert override.actor == "cora@example.org" and "still accepts the header" in override.after
    assert override.detail["problems"][0]["code"] == "M54.5"


def test_a_blank_override_reason_is_no_override(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm, text=DATED)
    with pytest.raises(svc.ApprovalRefused):
        svc.approve(cctx, c.id, reviewer, "Keep using M54.5.", c.version, override_reason="   ")
    assert _kinds(sink) == ["ack"]


def test_an_invented_code_cannot_be_overridden(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm)
    with pytest.raises(svc.UnverifiedCodes):
        svc.approve(cctx, c.id, reviewer, "Use 20610 with modifier 25 and Z99.999.", c.version,
                    override_reason="I know better")
    assert _kinds(sink) == ["ack"]


def test_the_guard_is_a_pure_domain_function():
    rows = [{"code": "M54.5", "status": "not_billable", "role": "uncited"},
            {"code": "J1030", "status": "terminated", "role": "not_recommended"},
            {"code": "Q99.9", "status": "unknown", "role": "uncited"}]
    problems = approval_problems(Verification(codes=rows), "Use M54.5 and Q99.9; J1030 ended.", date(2026, 3, 1))
    assert [(p.kind, p.overridable) for p in problems] == [("header", True), ("unknown", False)]
    undated = approval_problems(Verification(codes=rows[:1]), "Use M54.5.", None)
    assert "no date of service was given" in undated[0].reason or "header" in undated[0].reason


def test_the_approved_text_keeps_no_doubled_greeting_or_signature(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm)
    body = ("Hello Casey,\n\nReport 20610 and 99213 with modifier 25 on the E/M.\n\n"
            "Best regards,\nCora Reyes, CPC\nCertified coder, mailbot")
    drive(cctx, svc.approve(cctx, c.id, reviewer, body, c.version))
    text = sink.messages[-1].message.get_body(("plain",)).get_content()
    assert text.count("Hello") == 1 and text.count("Cora Reyes, CPC") == 1
    assert "Best regards" not in text and "Report 20610 and 99213 with modifier 25" in " ".join(text.split())


def test_preview_is_exactly_what_approval_sends(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm)
    body = "Report 20610 and 99213 with modifier 25 on the E/M when it is separately identifiable."
    shown = svc.preview_answer(cctx, c.id, reviewer, body)
    assert shown["problems"] == [] and _kinds(sink) == ["ack"]     # a preview sends and stores nothing
    drive(cctx, svc.approve(cctx, c.id, reviewer, body, c.version))
    sent = sink.messages[-1].message

    def without_clock(text: str) -> str:   # the footer's timestamp is the only moving part
        import re
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "T", text).replace("\r\n", "\n")

    assert shown["subject"] == sent["Subject"]
    assert without_clock(shown["text"]) == without_clock(sent.get_body(("plain",)).get_content())
    assert without_clock(shown["html"]) == without_clock(sent.get_body(("html",)).get_content())


def test_customer_mail_has_no_operator_instructions_and_no_undated_claim(cctx, llm, sink, reviewer, db):
    c = ask(cctx, llm, text="Can 20610 and 99213 be billed together? No date yet.")
    assert _consultation(db).date_of_service is None
    drive(cctx, svc.approve(cctx, c.id, reviewer,
                            "Report 20610 and 99213 with modifier 25 on the E/M (NCCI allows it). "
                            "J1030 is terminated and must not be reported.", c.version))
    text = sink.messages[-1].message.get_body(("plain",)).get_content()
    html = sink.messages[-1].message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "mailbot codes import" not in part and "--cpt" not in part
        assert "on the date of service" not in part
    assert "NOT VALID (no longer in the code sets)" in text


def test_a_follow_up_gets_the_short_acknowledgement_not_the_full_one(cctx, llm, sink, reviewer, db):
    from tests.consultation.drive import question, receive

    c = ask(cctx, llm)
    drive(cctx, svc.request_info(cctx, c.id, reviewer, "Which knee?", c.version))
    llm.script(llm.json(dict(ANSWER)))
    receive(cctx, question(f"Re: Billing 20610 with an E/M [#Q-{c.id}]", "Left knee.", message_id="<q2@example.org>",
                           headers={"In-Reply-To": sink.messages[-1].message["Message-ID"]}))
    acks = [m.message for m in sink.messages if m.message["X-Mailbot-Kind"] == "ack"]
    assert len(acks) == 2
    first, second = (a.get_body(("plain",)).get_content() for a in acks)
    assert "What happens next" in first
    assert "What happens next" not in second and "We received your reply" in second


def test_a_follow_up_keeps_the_reviewers_saved_text_current(cctx, llm, sink, reviewer, db):
    from mailbot.services import draft_versions
    from tests.consultation.drive import question, receive

    c = ask(cctx, llm)
    drive(cctx, svc.save_draft(cctx, c.id, reviewer, "My careful answer about 20610 with modifier 25.", c.version))
    llm.script(llm.json(dict(ANSWER, answer="A fresh model draft about both knees.")))
    receive(cctx, question("Re: Billing", "And if it was both knees?", message_id="<q3@example.org>",
                           headers={"In-Reply-To": "<q1@example.org>"}))
    with db.read() as session:
        drafts = session.exec(select(Draft).where(Draft.consultation_id == c.id)
                              .order_by(Draft.created_at.desc(), Draft.id.desc())).all()
    assert drafts[0].body == "A fresh model draft about both knees."         # kept as a version...
    assert draft_versions.current(drafts).body == "My careful answer about 20610 with modifier 25."  # ...not current
    assert [d.body for d in draft_versions.suggestions(drafts)] == ["A fresh model draft about both knees."]

    # Restoring the suggestion makes it current, as a new reviewer version; nothing is lost.
    version = _consultation(db).version
    svc_restore = draft_versions.restore(cctx, c.id, reviewer, drafts[0].id, version)
    assert svc_restore == []
    with db.read() as session:
        again = session.exec(select(Draft).where(Draft.consultation_id == c.id)
                             .order_by(Draft.created_at.desc(), Draft.id.desc())).all()
        assert session.get(Consultation, c.id).version == version + 1
    assert draft_versions.current(again).body == "A fresh model draft about both knees."
    assert len(again) == len(drafts) + 1
    with pytest.raises(svc.StaleEdit):
        draft_versions.restore(cctx, c.id, reviewer, drafts[0].id, version)


def test_a_patient_name_in_the_subject_is_not_echoed_and_the_item_is_marked(cctx, llm, sink, reviewer, db):
    from tests.consultation.drive import question, receive

    llm.script(llm.json(ANSWER))
    receive(cctx, question("Coding question for patient John Smith", "Can 20610 and 99213 be billed together?"))
    c = _consultation(db)
    [ack] = sink.messages
    assert "John Smith" not in ack.message["Subject"]
    assert ack.message["Subject"] == f"Re: Coding question for patient [NAME] [#Q-{c.id}]"
    assert c.has_phi


def test_a_follow_up_keeps_the_items_place_in_the_queue_and_marks_a_new_reply(cctx, llm, sink, reviewer, db):
    from tests.consultation.drive import question, receive

    c = ask(cctx, llm)
    waiting = c.waiting_since
    drive(cctx, svc.request_info(cctx, c.id, reviewer, "Which knee?", c.version))
    llm.script(llm.json(ANSWER))
    receive(cctx, question("Re: Billing", "Left knee.", message_id="<q2@example.org>",
                           headers={"In-Reply-To": sink.messages[-1].message["Message-ID"]}))
    again = _consultation(db)
    assert again.state == "awaiting_review"
    assert again.waiting_since == waiting and again.new_reply_at is not None
    drive(cctx, svc.save_draft(cctx, c.id, reviewer, "Seen the reply; modifier 25 on 99213 with 20610.",
                               again.version))
    assert _consultation(db).new_reply_at is None          # a reviewer acted on it


def test_the_claim_holder_is_mailed_when_the_asker_replies(cctx, llm, sink, reviewer, db):
    from mailbot.services import claims
    from tests.consultation.drive import question, receive

    c = ask(cctx, llm)
    claims.claim(cctx, c.id, reviewer)
    llm.script(llm.json(ANSWER))
    receive(cctx, question("Re: Billing", "Also: it was the left knee.", message_id="<q5@example.org>",
                           headers={"In-Reply-To": "<q1@example.org>"}))
    notices = [m for m in sink.messages if m.message["X-Mailbot-Kind"] == "notice"]
    assert [m.recipients for m in notices] == [["cora@example.org"]]
    assert notices[0].message["Subject"] == f"[Q-{c.id}] the asker replied"
    assert "left knee" not in notices[0].message.get_body(("plain",)).get_content()
