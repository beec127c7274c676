"""Issue 17, points 4 and 14 (DSN parts): bounces count only for mail we
sent, over real SMTP against the real listener.

A DSN is tied to one of our messages by its VERP return path
(``bounces+<id>-<tag>@``) or by the Message-ID it carries back; anything
else -- a forged ``multipart/report`` from anyone, to any of our addresses --
suspends nobody.  Each bounced message counts once, however often a DSN
lists the address or is sent again.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from mailbot.mail import guards
from mailbot.mail.parse import parse
from mailbot.models import BounceEvent, OutboundMessage, utcnow
from mailbot.models.jobs import Subscriber, SubscriberStatus
from mailbot.services.delivery import verp_address
from tests.mail.flow import ASK, BOUNCES, deliver, row

SUB = "subscriber@clinic.example"


def _subscriber(ctx) -> None:
    with ctx.db.session() as session:
        session.add(Subscriber(email=SUB, status=SubscriberStatus.ACTIVE, confirmed_at=utcnow()))


def _sent(ctx, n: int) -> tuple[int, str]:
    message_id = f"<digest.{n}.x7q@mailbot.localhost>"
    with ctx.db.session() as session:
        out = OutboundMessage(kind="digest", to_addr=SUB, message_id=message_id, raw=b"x", state="sent")
        session.add(out)
        session.flush()
        return out.id, message_id


def _dsn(n: int, *, blocks: int = 1, returned_id: str = "", action: str = "failed", status: str = "5.1.1") -> bytes:
    block = (f"Final-Recipient: rfc822; {SUB}\r\nAction: {action}\r\nStatus: {status}\r\n"
             f"Diagnostic-Code: smtp; 550 {status} <{SUB}>: user unknown\r\n")
    returned = (f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: {SUB}\r\nMessage-ID: {returned_id}\r\n"
                if returned_id else "")
    return ((f"From: MAILER-DAEMON@mx.clinic.example\r\nTo: {BOUNCES}\r\nSubject: Undelivered Mail\r\n"
             f"Message-ID: <dsn-{n}@mx.clinic.example>\r\nMIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
             "--b\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n--b\r\n"
             "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.clinic.example\r\n\r\n"
             + "\r\n".join([block] * blocks) + returned + "--b--\r\n").encode())


def _subscriber_row(ctx) -> Subscriber:
    with ctx.db.read() as session:
        return session.exec(select(Subscriber).where(Subscriber.email == SUB)).one()


def _events(ctx) -> list[BounceEvent]:
    with ctx.db.read() as session:
        return list(session.exec(select(BounceEvent)).all())


@pytest.mark.parametrize("to", [BOUNCES, ASK, "lookup@mailbot.localhost"])
def test_a_forged_dsn_listing_a_subscriber_three_times_suspends_no_one(ctx, listener, stored, to):
    _subscriber(ctx)
    for n in range(3):   # more than the threshold of 3, from anyone, to any of our addresses
        inbound_id = deliver(ctx, listener, stored, _dsn(n, blocks=3), sender="attacker@evil.example", to=to)
        assert row(ctx, inbound_id).action in ("bounce", "auto_submitted")
    assert _events(ctx) == []
    assert (_subscriber_row(ctx).status, _subscriber_row(ctx).bounce_count) == (SubscriberStatus.ACTIVE, 0)


def test_a_forged_verp_tag_is_not_our_mail(ctx, listener, stored):
    _subscriber(ctx)
    sent_id, _ = _sent(ctx, 0)
    for n in range(3):
        deliver(ctx, listener, stored, _dsn(n), sender="", to=f"bounces+{sent_id}-000000000000@mailbot.localhost")
    assert _events(ctx) == [] and _subscriber_row(ctx).status == SubscriberStatus.ACTIVE


def test_repeated_blocks_and_a_repeated_dsn_count_once(ctx, listener, stored):
    _subscriber(ctx)
    sent = _sent(ctx, 0)
    for n in range(4):   # the same bounce, sent again and again, each listing the address three times
        deliver(ctx, listener, stored, _dsn(n, blocks=3), sender="", to=verp_address(ctx.settings, *sent))
    assert len(_events(ctx)) == 4 and {e.outbound_id for e in _events(ctx)} == {sent[0]}
    assert (_subscriber_row(ctx).status, _subscriber_row(ctx).bounce_count) == (SubscriberStatus.ACTIVE, 1)


def test_bounces_of_three_messages_we_sent_suspend_the_subscriber(ctx, listener, stored):
    _subscriber(ctx)
    by_verp = [_sent(ctx, n) for n in range(2)]
    for n, sent in enumerate(by_verp):
        deliver(ctx, listener, stored, _dsn(n), sender="", to=verp_address(ctx.settings, *sent))
    assert _subscriber_row(ctx).status == SubscriberStatus.ACTIVE
    # the third comes back to the plain bounce address, quoting our Message-ID
    _, message_id = _sent(ctx, 2)
    deliver(ctx, listener, stored, _dsn(2, returned_id=message_id), sender="", to=BOUNCES)
    assert (_subscriber_row(ctx).status, _subscriber_row(ctx).bounce_count) == (SubscriberStatus.SUSPENDED, 3)


def test_a_verp_bounce_that_names_no_recipient_still_counts_for_the_message(ctx, listener, stored):
    _subscriber(ctx)
    sent = _sent(ctx, 0)
    raw = (b"From: MAILER-DAEMON@mx.clinic.example\r\nTo: bounces@mailbot.localhost\r\nSubject: failure notice\r\n\r\n"
           b"Sorry, I couldn't deliver your message. 550 5.1.1 no such user\r\n")
    deliver(ctx, listener, stored, raw, sender="", to=verp_address(ctx.settings, *sent))
    [event] = _events(ctx)
    assert (event.recipient, event.permanent, event.status) == (SUB, True, "5.1.1")


# -- point 14: reading a DSN -----------------------------------------------------

def _reports(raw: bytes) -> list[guards.DsnReport]:
    return guards.dsn_reports(parse(raw, envelope_from="<>").message)


@pytest.mark.parametrize("action", ["failed", "failure", "Failed (permanent)", "FAIL"])
def test_action_failed_and_failure_are_permanent(action):
    [report] = _reports(_dsn(0, action=action, status="4.4.7"))
    assert report.permanent and report.action == "failed"


def test_delayed_is_not_permanent():
    [report] = _reports(_dsn(0, action="delayed", status="4.4.1"))
    assert not report.permanent


def test_a_version_number_in_the_text_is_not_the_status():
    raw = (b"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@mailbot.localhost\r\nSubject: failure notice\r\n\r\n"
           b"This is the mail system at host mx.example.net (Postfix 2.11.3, Dovecot 2.3.19).\r\n"
           b"<gone@example.org>: host said: mailbox full\r\n")
    [report] = _reports(raw)
    assert (report.recipient, report.status) == ("gone@example.org", "")


@pytest.mark.parametrize("value", ["rfc822; smtp=gone@example.org", "rfc822;<gone@example.org>",
                                   "smtp; gone@example.org", "RFC822; SMTP:Gone@Example.org"])
def test_final_recipient_forms_are_parsed(value):
    raw = _dsn(0).replace(f"Final-Recipient: rfc822; {SUB}".encode(), f"Final-Recipient: {value}".encode())
    [report] = _reports(raw)
    assert report.recipient == "gone@example.org"
