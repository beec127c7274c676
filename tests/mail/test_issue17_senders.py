"""Issue 17, points 6, 7, 9 and 14: who a message is from, over real SMTP.

- 7: ``From: boss@corp.example <attacker@evil.example>`` is attacker@ --
  for the reviewer, the acknowledgement and the approved answer;
- 6: an envelope sender or Reply-To that is an encoded word (CR/LF inside)
  is never an address: the message is answered at a safe address when there
  is one, and otherwise quarantined with the reason -- never left
  ``received`` for the reconciler to poke forever;
- 9: a real bounce with a null sender and no From is a bounce, not "cannot
  parse: no sender".
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from mailbot.models import Consultation, OutboundMessage
from mailbot.services import consultations
from tests.mail.flow import ASK, BOUNCES, LOOKUP, deliver, quarantine_items, replies, row

INJECTED = "=?utf-8?q?x=0D=0ABcc=3A_victim=40evil.example?=@clinic.example"


def _mail(headers: str, body: str = "Can 20610 and 99213 be billed together?") -> bytes:
    return (headers.strip() + "\r\n\r\n" + body + "\r\n").encode()


@pytest.mark.parametrize("from_header", [
    "boss@corp.example <attacker@evil.example>",
    '"boss@corp.example" <attacker@evil.example>',
    "=?utf-8?q?boss=40corp.example?= <attacker@evil.example>",
])
def test_a_display_name_that_looks_like_an_address_is_not_the_sender(ctx, listener, stored, from_header):
    inbound_id = deliver(ctx, listener, stored, _mail(
        f"From: {from_header}\r\nTo: {ASK}\r\nSubject: modifier question\r\nMessage-ID: <dn@evil.example>"),
        sender="attacker@evil.example")
    stored_row = row(ctx, inbound_id)
    assert (stored_row.from_addr, stored_row.from_name) == ("attacker@evil.example", "")
    with ctx.db.read() as session:
        consultation = session.get(Consultation, stored_row.consultation_id)
    assert (consultation.asker_email, consultation.asker_name) == ("attacker@evil.example", "")
    [ack] = replies(ctx, inbound_id)
    assert [a.addr_spec for a in ack["To"].addresses] == ["attacker@evil.example"]
    assert "boss@" not in str(ack["To"]) and "boss@" not in ack.get_body(("plain",)).get_content()


def test_two_angle_addresses_in_from_are_ambiguous_and_the_envelope_is_used(ctx, listener, stored):
    inbound_id = deliver(ctx, listener, stored, _mail(
        f"From: Boss <boss@corp.example> <attacker@evil.example>\r\nTo: {ASK}\r\nSubject: q"),
        sender="real@clinic.example")
    assert row(ctx, inbound_id).from_addr == "real@clinic.example"
    assert [a.addr_spec for m in replies(ctx, inbound_id) for a in m["To"].addresses] == ["real@clinic.example"]


def test_an_encoded_word_envelope_sender_with_crlf_is_answered_at_the_from_address(ctx, listener, stored):
    inbound_id = deliver(ctx, listener, stored, _mail(f"From: Kim <kim@clinic.example>\r\nTo: {ASK}\r\nSubject: q"),
                         sender=INJECTED)
    assert row(ctx, inbound_id).status == "processed"
    [ack] = replies(ctx, inbound_id)
    assert [a.addr_spec for a in ack["To"].addresses] == ["kim@clinic.example"] and ack["Bcc"] is None


def test_an_encoded_word_envelope_sender_and_no_from_is_quarantined_not_retried(ctx, listener, stored):
    inbound_id = deliver(ctx, listener, stored, _mail(f"To: {ASK}\r\nSubject: q"), sender=INJECTED)
    stored_row = row(ctx, inbound_id)
    assert stored_row.status == "quarantined" and "no sender" in stored_row.error
    assert [q.ref_id for q in quarantine_items(ctx) if q.kind == "inbound"] == [inbound_id]
    assert replies(ctx, inbound_id) == []
    # and the next message is answered as usual
    next_id = deliver(ctx, listener, stored, _mail(f"From: a@clinic.example\r\nTo: {ASK}\r\nSubject: q2"),
                      sender="a@clinic.example")
    assert len(replies(ctx, next_id)) == 1


@pytest.mark.parametrize("to", [ASK, LOOKUP])
def test_a_reply_to_whose_address_is_an_encoded_word_is_not_used(ctx, listener, stored, to):
    inbound_id = deliver(ctx, listener, stored, _mail(
        f"From: Kim <kim@clinic.example>\r\nReply-To: {INJECTED}\r\nTo: {to}\r\nSubject: HELP", body="HELP"),
        sender="kim@clinic.example", to=to)
    assert row(ctx, inbound_id).reply_to == ""
    [reply] = replies(ctx, inbound_id)
    assert [a.addr_spec for a in reply["To"].addresses] == ["kim@clinic.example"] and reply["Bcc"] is None


def test_an_ack_that_cannot_be_written_is_quarantined_and_the_question_goes_on(ctx, listener, stored):
    """Defence in depth: a consultation stored before these checks, with an
    address the composer refuses, is quarantined at the ack and drafted."""
    inbound_id = deliver(ctx, listener, stored, _mail(f"From: kim@clinic.example\r\nTo: {ASK}\r\nSubject: q"),
                         sender="kim@clinic.example")
    cid = row(ctx, inbound_id).consultation_id
    with ctx.db.session() as session:
        consultation = session.get(Consultation, cid)
        consultation.asker_email, consultation.state = INJECTED, "received"
        session.add(consultation)
        session.exec(delete(OutboundMessage).where(OutboundMessage.consultation_id == cid))
    consultations.advance(ctx, cid)
    with ctx.db.read() as session:
        assert session.get(Consultation, cid).state == "acknowledged"
    [item] = [q for q in quarantine_items(ctx) if q.kind == "consultation"]
    assert item.ref_id == cid and item.stage == "ack" and "no address we may write to" in item.reason


def test_a_null_sender_bounce_without_from_is_a_bounce(ctx, listener, stored):
    raw = _mail("To: bounces@mailbot.localhost\r\nSubject: Undelivered Mail Returned to Sender\r\n"
                "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b",
                "--b\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n--b\r\n"
                "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
                "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--")
    inbound_id = deliver(ctx, listener, stored, raw, sender="", to=BOUNCES)
    stored_row = row(ctx, inbound_id)
    assert (stored_row.status, stored_row.action) == ("processed", "bounce"), stored_row.error
    assert not [q for q in quarantine_items(ctx) if q.ref_id == inbound_id]


def test_a_plain_text_bounce_to_the_bounce_address_without_any_sender_is_a_bounce(ctx, listener, stored):
    raw = _mail("To: bounces@mailbot.localhost\r\nSubject: failure notice",
                "Hi. This is the qmail-send program.\r\n<gone@example.org>:\r\nSorry, no mailbox here. (#5.1.1)")
    inbound_id = deliver(ctx, listener, stored, raw, sender="", to=BOUNCES)
    assert (row(ctx, inbound_id).status, row(ctx, inbound_id).action) == ("processed", "bounce")
