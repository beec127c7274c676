"""Routing stored messages: the rule table, its actions, and replay."""

from __future__ import annotations

import pytest
from sqlmodel import select

from mailbot.mail import intake
from mailbot.mail.compose import Envelope, Rendered, build
from mailbot.mail.routing import cap_verdict
from mailbot.mail.send import as_bytes
from mailbot.models import (
    Attachment,
    BounceEvent,
    Consultation,
    InboundMessage,
    OutboundMessage,
    QuarantineItem,
)
from mailbot.services import Poke
from mailbot.services.inbound import process, quarantined, replay
from tests.mail.conftest import eml

ASK = "ask@mailbot.localhost"


def store(ctx, raw: bytes, *, sender: str = "coder@clinic.example", to: str = ASK) -> int:
    return intake.accept(ctx.db, raw, source="smtp", envelope_from=sender, envelope_to=[to], peer="127.0.0.1")


def row(ctx, inbound_id: int) -> InboundMessage:
    with ctx.db.read() as session:
        return session.get(InboundMessage, inbound_id)


def message(subject: str, body: str, *, sender: str = "coder@clinic.example", to: str = ASK,
            message_id: str = "", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"From: Coder <{sender}>", f"To: {to}", f"Subject: {subject}"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


CORPUS_ROUTES = [
    # file, envelope sender, envelope recipient, status, action, poked actor
    ("plain_question.eml", "jane.doe@clinic.example", ASK, "processed", "consult", "advance_consultation"),
    ("html_only.eml", "billing@hospital.example", ASK, "processed", "consult", "advance_consultation"),
    ("latin1.eml", "helene@cabinet.example", ASK, "processed", "consult", "advance_consultation"),
    ("shift_jis.eml", "tanaka@iryou.example.jp", ASK, "processed", "consult", "advance_consultation"),
    ("broken_charset.eml", "bob@small-practice.example", ASK, "processed", "consult", "advance_consultation"),
    ("raw_8bit_headers.eml", "jose@clinica.example", ASK, "processed", "consult", "advance_consultation"),
    ("nested_multipart.eml", "carol@ortho.example", ASK, "processed", "consult", "advance_consultation"),
    ("forwarded_attachment.eml", "dan@billing.example", ASK, "processed", "consult", "advance_consultation"),
    ("forwarded_inline.eml", "erin@billing.example", ASK, "processed", "consult", "advance_consultation"),
    ("missing_message_id.eml", "frank@clinic.example", ASK, "processed", "consult", "advance_consultation"),
    ("attachments.eml", "gina@clinic.example", "ask+urgent@mailbot.localhost", "processed", "consult", "advance_consultation"),
    ("encoded_word_subject.eml", "maria@clinic.example", ASK, "processed", "consult", "advance_consultation"),
    ("reply_quoted.eml", "jane.doe@clinic.example", ASK, "processed", "consult", "advance_consultation"),
    ("command_lookup.eml", "kim@clinic.example", "lookup@mailbot.localhost", "processed", "command", "run_command"),
    ("bounce_dsn.eml", "<>", "bounces@mailbot.localhost", "processed", "bounce", None),  # names no mail we sent
    ("bounce_qmail.eml", "<>", "bounces@mailbot.localhost", "processed", "bounce", None),  # names no mail we sent
    ("bounce_exim_delayed.eml", "<>", "bounces@mailbot.localhost", "processed", "bounce", None),  # names no mail we sent
    ("auto_reply_rfc3834.eml", "henry@clinic.example", ASK, "dropped", "auto_submitted", None),
    ("auto_reply_exchange.eml", "ivy@corp.example", ASK, "dropped", "auto_submitted", None),
    ("list_mail.eml", "bounce-coders@coding-list.example", ASK, "dropped", "auto_submitted", None),
    ("mdn_read_receipt.eml", "jack@clinic.example", ASK, "dropped", "auto_submitted", None),
    ("not_an_email.eml", "x@junk.example", ASK, "quarantined", "quarantined", None),
    ("no_sender.eml", "", ASK, "quarantined", "quarantined", None),
]


@pytest.mark.parametrize("name, sender, to, status, action, actor", CORPUS_ROUTES, ids=[c[0] for c in CORPUS_ROUTES])
def test_each_corpus_message_is_routed_or_quarantined_with_a_reason(ctx, name, sender, to, status, action, actor):
    inbound_id = store(ctx, eml(name), sender=sender, to=to)
    pokes = process(ctx, inbound_id)
    stored = row(ctx, inbound_id)
    assert (stored.status, stored.action) == (status, action), stored.route
    assert [p.actor for p in pokes] == ([actor] if actor else [])
    if status == "quarantined":
        with ctx.db.read() as session:
            [item] = session.exec(select(QuarantineItem).where(QuarantineItem.ref_id == inbound_id)).all()
        assert item.kind == "inbound" and item.reason.startswith("cannot parse:")
        assert stored.error == item.reason
    else:
        assert stored.route and stored.route[-1]["rule"] in (action, "bounce", "new_question", "command")
    if action in ("auto_submitted", "bounce"):
        assert stored.auto_reply_ok is False


def test_a_new_question_opens_a_consultation_with_the_parsed_fields(ctx):
    inbound_id = store(ctx, eml("nested_multipart.eml"), sender="carol@ortho.example")
    [poke] = process(ctx, inbound_id)
    with ctx.db.read() as session:
        consultation = session.get(Consultation, poke.id)
        attachments = session.exec(select(Attachment).where(Attachment.inbound_id == inbound_id)).all()
        stored = session.get(InboundMessage, inbound_id)
    assert consultation.state == "received" and consultation.asker_email == "carol@ortho.example"
    assert consultation.root_message_id == "<nested-1@ortho.example>"
    assert consultation.thread_message_ids == ["<nested-1@ortho.example>"]
    assert consultation.last_inbound_id == inbound_id and stored.consultation_id == consultation.id
    assert stored.codes == ["27447", "20985"] and stored.text.startswith("Total knee")
    assert sorted(a.filename for a in attachments) == ["logo.png", "op-note.pdf"]
    assert [r["rule"] for r in stored.route] == ["sender_verified", "daily_cap", "new_question"]


def test_processing_twice_does_nothing_the_second_time(ctx):
    inbound_id = store(ctx, eml("plain_question.eml"))
    assert process(ctx, inbound_id)
    assert process(ctx, inbound_id) == []
    with ctx.db.read() as session:
        assert len(session.exec(select(Consultation)).all()) == 1


def test_the_same_message_twice_is_dropped_as_a_duplicate(ctx):
    first = store(ctx, eml("plain_question.eml"))
    again = store(ctx, eml("plain_question.eml").replace(b"Date: Mon", b"X-Resent: yes\nDate: Mon"))
    process(ctx, first)
    assert process(ctx, again) == []
    assert row(ctx, again).action == "duplicate"
    assert row(ctx, again).route[0]["reason"] == f"same message as inbound #{first}"


def test_a_reply_to_our_mail_attaches_to_the_consultation(ctx):
    [poke] = process(ctx, store(ctx, eml("plain_question.eml"), sender="jane.doe@clinic.example"))
    cid = poke.id
    with ctx.db.session() as session:
        session.add(OutboundMessage(kind="ack", consultation_id=cid, to_addr="jane.doe@clinic.example",
                                    message_id="<ack.7@mailbot.localhost>", raw=b"x"))
    reply_id = store(ctx, eml("reply_quoted.eml"), sender="jane.doe@clinic.example")
    assert process(ctx, reply_id) == [Poke("consultation_followup", reply_id)]
    with ctx.db.read() as session:
        consultation = session.get(Consultation, cid)
    stored = row(ctx, reply_id)
    assert stored.consultation_id == cid and stored.action == "followup"
    assert consultation.last_inbound_id == reply_id
    assert consultation.thread_message_ids == ["<CAF1x2=question1@mail.clinic.example>", "<CAF1x2=reply2@mail.clinic.example>"]


def test_the_reference_token_attaches_only_for_the_asker(ctx):
    [poke] = process(ctx, store(ctx, message("Question", "What about 99213?", message_id="<q1@clinic.example>")))
    token = f"Re: Question [#Q-{poke.id}]"
    mine = store(ctx, message(token, "More detail.", message_id="<q2@clinic.example>"))
    assert process(ctx, mine)[0].actor == "consultation_followup"
    stranger = store(ctx, message(token, "Let me in.", sender="mallory@evil.example", message_id="<m1@evil.example>"),
                     sender="mallory@evil.example")
    assert process(ctx, stranger)[0].actor == "advance_consultation"


def test_commands_at_ask_must_be_typed_in_capitals(ctx):
    prose = store(ctx, message("Check whether 20610 and 99213 go together", "Thanks", message_id="<p1@c.example>"))
    assert process(ctx, prose)[0].actor == "advance_consultation"
    command = store(ctx, message("CHECK 20610 99213", "", message_id="<p2@c.example>"))
    assert process(ctx, command) == [Poke("run_command", command)]
    body = store(ctx, message("codes", "LOOKUP 99213", message_id="<p3@c.example>"))
    assert process(ctx, body) == [Poke("run_command", body)]


def test_anything_sent_to_lookup_or_jobs_is_a_command(ctx):
    jobs = "jobs@mailbot.localhost"
    chat = store(ctx, message("hello", "thanks for the service", to=jobs, message_id="<j1@c.example>"), to=jobs)
    assert process(ctx, chat) == [Poke("run_command", chat)]
    assert row(ctx, chat).route[-1]["reason"].endswith("(from the recipient)")


def test_the_daily_cap_marks_replies_then_one_notice(ctx):
    ctx.settings.guards.daily_reply_cap = 2
    verdicts = []
    for i in range(4):
        inbound_id = store(ctx, message("HELP", "", message_id=f"<cap{i}@c.example>"))
        process(ctx, inbound_id)
        stored = row(ctx, inbound_id)
        verdicts.append((cap_verdict(stored), stored.auto_reply_ok))
    assert verdicts == [("ok", True), ("ok", True), ("notice", False), ("over", False)]


def test_our_own_mail_coming_back_is_dropped(ctx):
    ours = build(Rendered("Re: HELP", "text", None), Envelope(to=ASK, from_addr="lookup@mailbot.localhost"),
                 domain="mailbot.localhost", kind="help")
    inbound_id = store(ctx, as_bytes(ours), sender="bounces@mailbot.localhost")
    assert process(ctx, inbound_id) == []
    assert row(ctx, inbound_id).action == "own_mail"


def test_bounces_record_the_failed_recipient_of_mail_we_sent(ctx):
    with ctx.db.session() as session:
        sent = OutboundMessage(kind="answer", to_addr="gone@clinic.example", message_id="<answer.3@mailbot.localhost>",
                               raw=b"x", state="sent")
        session.add(sent)
        session.flush()
        sent_id = sent.id
    inbound_id = store(ctx, eml("bounce_dsn.eml"), sender="<>", to="bounces@mailbot.localhost")
    [poke] = process(ctx, inbound_id)
    with ctx.db.read() as session:
        event = session.get(BounceEvent, poke.id)
    assert (event.recipient, event.status, event.permanent, event.inbound_id, event.outbound_id) == \
        ("gone@clinic.example", "5.1.1", True, inbound_id, sent_id)


def test_senders_off_the_allow_list_are_quarantined(ctx):
    ctx.settings.guards.allow_senders = ["@clinic.example"]
    outsider = store(ctx, message("q", "99213?", sender="x@elsewhere.example", message_id="<o1@e.example>"))
    insider = store(ctx, message("q", "99213?", message_id="<i1@clinic.example>"))
    assert process(ctx, outsider) == [] and row(ctx, outsider).status == "quarantined"
    assert row(ctx, outsider).auto_reply_ok is False
    [item] = quarantined(ctx)
    assert item.reason == "sender_not_allowed: x@elsewhere.example is not on guards.allow_senders"
    assert process(ctx, insider)[0].actor == "advance_consultation"


def test_unauthenticated_mail_is_quarantined_and_can_be_replayed(ctx):
    ctx.settings.guards.trusted_authserv_id = "mx.mailbot.example"
    spoofed = store(ctx, message("q", "99213?", message_id="<s1@clinic.example>", headers={
        "Authentication-Results": "mx.mailbot.example; dmarc=fail header.from=clinic.example"}))
    assert process(ctx, spoofed) == []
    assert row(ctx, spoofed).status == "quarantined"
    [item] = quarantined(ctx)
    assert item.ref_id == spoofed and item.reason == "authentication_failed: DMARC failed"
    # The operator decides it was genuine (e.g. a forwarding service broke DMARC).
    ctx.settings.guards.trusted_authserv_id = ""
    assert replay(ctx, item.id, by="admin@mailbot.localhost") == [Poke("process_inbound", spoofed)]
    assert process(ctx, spoofed)[0].actor == "advance_consultation"
    assert quarantined(ctx) == []
    with pytest.raises(ValueError, match="already resolved"):
        replay(ctx, item.id)
    with pytest.raises(LookupError):
        replay(ctx, 999_999)


def test_a_rule_that_crashes_quarantines_the_message_with_the_error(ctx, monkeypatch):
    """A bug in a rule must not lose the message or retry it forever."""
    from mailbot.mail import routing

    def broken(mail):
        raise KeyError("surprise")

    monkeypatch.setattr(routing, "CHAIN", (routing.Link("broken", broken, routing.Action.DROP),) + routing.CHAIN)
    inbound_id = store(ctx, eml("plain_question.eml"))
    assert process(ctx, inbound_id) == []
    stored = row(ctx, inbound_id)
    assert stored.status == "quarantined" and stored.error == "routing failed: KeyError('surprise')"
    with ctx.db.read() as session:
        assert session.exec(select(Consultation)).all() == []      # nothing half-done
    monkeypatch.undo()
    [item] = quarantined(ctx)
    replay(ctx, item.id)
    assert process(ctx, inbound_id)[0].actor == "advance_consultation"


def test_a_bounced_answer_is_noted_on_the_message_and_in_the_consultation_audit(ctx):
    from mailbot.models import AuditEvent

    [poke] = process(ctx, store(ctx, eml("plain_question.eml"), sender="jane.doe@clinic.example"))
    with ctx.db.session() as session:
        answer = OutboundMessage(kind="answer", consultation_id=poke.id, to_addr="gone@clinic.example",
                                 message_id="<answer.3@mailbot.localhost>", raw=b"x", state="sent")
        session.add(answer)
    bounce_id = store(ctx, eml("bounce_dsn.eml"), sender="<>", to="bounces@mailbot.localhost")
    process(ctx, bounce_id)
    with ctx.db.read() as session:
        answer = session.exec(select(OutboundMessage)).one()
        [event] = session.exec(select(AuditEvent).where(AuditEvent.consultation_id == poke.id)).all()
    assert answer.last_error.startswith("bounce: failed 5.1.1") and answer.state == "sent"
    assert event.action == "delivery_failed" and event.detail["permanent"] is True
    assert row(ctx, bounce_id).route[-1]["outbound_id"] == answer.id


def test_two_workers_racing_on_one_message_open_one_consultation(ctx):
    import threading

    inbound_ids = [store(ctx, message(f"q{i}", "Is 99213 right?", message_id=f"<race{i}@clinic.example>"))
                   for i in range(5)]
    results: list[list[Poke]] = []

    def worker():
        for inbound_id in inbound_ids:
            results.append(process(ctx, inbound_id))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pokes = [p for r in results for p in r]
    with ctx.db.read() as session:
        consultations = session.exec(select(Consultation)).all()
    assert len(consultations) == 5 and len(pokes) == 5
    assert sorted(p.id for p in pokes) == sorted(c.id for c in consultations)


def test_a_replayed_message_keeps_one_copy_of_each_attachment(ctx):
    """Routing stores attachments with the routed row; replay removes them,
    so routing again stores each once (issue 16: routing no longer deletes
    first when the message has none)."""
    ctx.settings.guards.allow_senders = ["@clinic.example"]
    inbound_id = store(ctx, eml("attachments.eml"), sender="gina@clinic.example")
    stored = row(ctx, inbound_id)
    ctx.settings.guards.allow_senders = ["@nowhere.example"]
    assert process(ctx, inbound_id) == [] and row(ctx, inbound_id).status == "quarantined"
    with ctx.db.read() as session:
        first = sorted(a.filename for a in session.exec(select(Attachment).where(Attachment.inbound_id == inbound_id)))
    assert first and stored.raw
    [item] = quarantined(ctx)
    ctx.settings.guards.allow_senders = []
    replay(ctx, item.id, by="admin@mailbot.localhost")
    with ctx.db.read() as session:
        assert session.exec(select(Attachment).where(Attachment.inbound_id == inbound_id)).all() == []
    assert process(ctx, inbound_id)[0].actor == "advance_consultation"
    with ctx.db.read() as session:
        again = sorted(a.filename for a in session.exec(select(Attachment).where(Attachment.inbound_id == inbound_id)))
    assert again == first
