"""Issue 17, points 10 and 14: no backscatter, no loops, over real SMTP.

Spam (a positive verdict from the filter in front of us), notices from mail
systems and antivirus gateways (with a real envelope sender), newsletters
and auto-replies in other languages get no automatic answer; an answer to
an unverified address never repeats the sender's name, nor a subject that
could carry a payload to a third party.
"""

from __future__ import annotations

import pytest

from tests.mail.flow import ASK, LOOKUP, deliver, replies, row

KIM = "kim@clinic.example"


def _mail(headers: str, body: str = "Can 20610 and 99213 be billed together?") -> bytes:
    return (headers.strip() + "\r\n\r\n" + body + "\r\n").encode()


NO_ANSWER = [
    # (label, headers, envelope sender, the rule expected to fire)
    ("spam flag", f"From: Kim <{KIM}>\r\nX-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=9.1", KIM, "spam"),
    ("spam status", f"From: Kim <{KIM}>\r\nX-Spam-Status: Yes, score=12.0 required=5.0", KIM, "spam"),
    ("antivirus gateway", "From: AntiVirus Gateway <antivirus@gw.clinic.example>\r\n"
                          "Subject: Virus found in message from you", "antivirus@gw.clinic.example", "system_notice"),
    ("postmaster, real envelope", "From: postmaster@clinic.example\r\nSubject: Message status",
     "postmaster@clinic.example", "bounce"),
    ("undeliverable, real envelope", f"From: Kim <{KIM}>\r\nSubject: Undeliverable: Billing question", KIM,
     "system_notice"),
    ("DSN subject", "From: Mail System <system@clinic.example>\r\nSubject: Delivery Status Notification (Failure)",
     "system@clinic.example", "system_notice"),
    ("content filter", "From: Mail Gateway <gateway@clinic.example>\r\nSubject: [SPAM] message quarantined",
     "gateway@clinic.example", "system_notice"),
    ("newsletter", "From: Coding News <news@coding-news.example>\r\nList-Unsubscribe: <mailto:u@coding-news.example>",
     "news@coding-news.example", "auto_submitted"),
    ("list id", "From: News <news@coding-news.example>\r\nList-Id: <news.coding-news.example>",
     "news@coding-news.example", "auto_submitted"),
    ("bulk", "From: News <news@coding-news.example>\r\nPrecedence: bulk", "news@coding-news.example",
     "auto_submitted"),
    ("Auto:", f"From: Kim <{KIM}>\r\nSubject: Auto: Re: Billing question", KIM, "auto_submitted"),
    ("Autosvar:", f"From: Kim <{KIM}>\r\nSubject: Autosvar: Billing question", KIM, "auto_submitted"),
    ("Automatische Antwort:", f"From: Kim <{KIM}>\r\nSubject: Automatische Antwort: Frage", KIM, "auto_submitted"),
    ("Delivered-To ours", f"From: Kim <{KIM}>\r\nDelivered-To: ask@mailbot.localhost", KIM, "delivered_to_us"),
    ("Reply-To ours", f"From: Kim <{KIM}>\r\nReply-To: lookup@mailbot.localhost", KIM, "from_our_address"),
    ("From ours", "From: ask+x@mailbot.localhost", "someone@clinic.example", "from_our_address"),
]


@pytest.mark.parametrize("to", [ASK, LOOKUP])
@pytest.mark.parametrize("label, headers, sender, rule", NO_ANSWER, ids=[c[0] for c in NO_ANSWER])
def test_machine_mail_spam_and_loops_get_no_automatic_answer(ctx, listener, stored, label, headers, sender, rule, to):
    if "Subject:" not in headers:
        headers += "\r\nSubject: HELP"
    inbound_id = deliver(ctx, listener, stored, _mail(f"{headers}\r\nTo: {to}\r\nMessage-ID: <{label.replace(' ', '.')}@x>"),
                         sender=sender, to=to)
    stored_row = row(ctx, inbound_id)
    assert replies(ctx, inbound_id) == []
    assert stored_row.route[-1]["rule"] == rule, stored_row.route
    assert stored_row.consultation_id is None


def test_a_forged_no_spam_header_under_the_filters_yes_is_still_spam(ctx, listener, stored):
    inbound_id = deliver(ctx, listener, stored, _mail(
        f"X-Spam-Flag: YES\r\nFrom: Kim <{KIM}>\r\nTo: {ASK}\r\nSubject: q\r\nX-Spam-Flag: NO"), sender=KIM)
    assert row(ctx, inbound_id).status == "quarantined" and replies(ctx, inbound_id) == []


PAYLOAD = "Cheap meds at pills-4-u.example, call +1 555 010 9999"


@pytest.mark.parametrize("to", [ASK, LOOKUP])
def test_an_unverified_sender_gets_no_name_or_payload_subject_echoed(ctx, listener, stored, to):
    inbound_id = deliver(ctx, listener, stored, _mail(
        f"From: Visit pills-4-u.example <victim@clinic.example>\r\nTo: {to}\r\nSubject: {PAYLOAD}", body="HELP"),
        sender="victim@clinic.example", to=to)
    [reply] = replies(ctx, inbound_id)
    raw = reply.as_string()
    assert "pills-4-u" not in raw and "555" not in raw and "Cheap" not in raw
    assert [a.addr_spec for a in reply["To"].addresses] == ["victim@clinic.example"]
    assert reply["To"].addresses[0].display_name == ""


def test_an_inert_subject_is_kept_for_threading(ctx, listener, stored):
    inbound_id = deliver(ctx, listener, stored, _mail(
        f"From: Kim Coder <{KIM}>\r\nTo: {ASK}\r\nSubject: Billing 20610 with an E/M"), sender=KIM)
    [ack] = replies(ctx, inbound_id)
    assert ack["Subject"].startswith("Re: Billing 20610 with an E/M [#Q-")
    assert "Kim Coder" not in ack.as_string()      # the name only for a verified sender


def test_a_sender_our_mta_verified_is_greeted_by_name(ctx, listener, stored):
    ctx.settings.guards.trusted_authserv_id = "mx.mailbot.example"
    inbound_id = deliver(ctx, listener, stored, _mail(
        f"Authentication-Results: mx.mailbot.example; dmarc=pass header.from=clinic.example\r\n"
        f"From: Kim Coder <{KIM}>\r\nTo: {ASK}\r\nSubject: Billing 20610 with an E/M"), sender=KIM)
    [ack] = replies(ctx, inbound_id)
    assert "Hello Kim Coder" in ack.get_body(("plain",)).get_content()
    assert row(ctx, inbound_id).route[0]["reason"].startswith("verified: dmarc=pass")


def test_a_question_about_virus_screening_is_still_a_question(ctx, listener, stored):
    inbound_id = deliver(ctx, listener, stored, _mail(
        f"From: Kim <{KIM}>\r\nTo: {ASK}\r\nSubject: Virus screening codes for prenatal visit"), sender=KIM)
    assert row(ctx, inbound_id).consultation_id is not None and len(replies(ctx, inbound_id)) == 1


def test_a_delivered_to_from_our_own_imap_mailbox_is_allowed_once(ctx):
    from mailbot.mail import intake
    from mailbot.services.inbound import process
    raw = _mail(f"Delivered-To: ask@mailbot.localhost\r\nFrom: Kim <{KIM}>\r\nTo: {ASK}\r\nSubject: q")
    once = intake.accept(ctx.db, raw, source="imap", envelope_from=KIM, envelope_to=[ASK])
    assert process(ctx, once)[0].actor == "advance_consultation"
    twice = intake.accept(ctx.db, b"Delivered-To: ask@mailbot.localhost\r\n" + raw.replace(b"Subject: q", b"Subject: q2"),
                          source="imap", envelope_from=KIM, envelope_to=[ASK])
    assert process(ctx, twice) == [] and row(ctx, twice).action == "delivered_to_us"


def test_the_same_message_id_from_another_sender_is_not_a_duplicate(ctx, listener, stored):
    first = deliver(ctx, listener, stored, _mail(f"From: {KIM}\r\nTo: {ASK}\r\nSubject: q1\r\nMessage-ID: <same@x>"),
                    sender=KIM)
    other = deliver(ctx, listener, stored, _mail(
        f"From: pat@clinic.example\r\nTo: {ASK}\r\nSubject: q2\r\nMessage-ID: <same@x>"), sender="pat@clinic.example")
    again = deliver(ctx, listener, stored, _mail(
        f"From: {KIM}\r\nTo: {ASK}\r\nSubject: q1 (resent)\r\nMessage-ID: <same@x>"), sender=KIM)
    assert row(ctx, first).action == "consult" and row(ctx, other).action == "consult"
    assert row(ctx, again).action == "duplicate"


def test_an_encoded_name_without_an_address_never_becomes_the_to(ctx, listener, stored):
    inbound_id = deliver(ctx, listener, stored, _mail(f"From: =?utf-8?q?Kim_Coder?=\r\nTo: {ASK}\r\nSubject: q"),
                         sender=KIM)
    [ack] = replies(ctx, inbound_id)
    assert [a.addr_spec for a in ack["To"].addresses] == [KIM]
