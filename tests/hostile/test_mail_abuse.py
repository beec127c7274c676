"""Abusive mail, end to end through intake, routing, the command runner and
the consultation acknowledgement (real database, both backends):

- a bounce storm: hundreds of delivery reports of every shape, mixed with
  real requests -- no reply to any report, one BounceEvent per failed
  recipient, a subscriber suspended at the threshold, another below it left
  alone, and every real request still answered exactly once;
- header injection: CR/LF (raw, encoded-word, Unicode line separators) and
  Bcc smuggling in subjects, display names and Reply-To, reflected into
  command replies and consultation acknowledgements -- the outgoing message
  has exactly our headers and one recipient.

The two-auto-responder mail loop is ``tests/mail/test_loops.py`` (real
listener, real relay, a naive and a polite responder); deep MIME nesting is
in ``test_mime_fuzz.py``.
"""

from __future__ import annotations

import base64
import re
from email import policy
from email.parser import BytesParser

from sqlmodel import select

from mailbot.commands import runner
from mailbot.jobs import subscriptions
from mailbot.mail import intake
from mailbot.models import BounceEvent, InboundMessage, OutboundMessage, utcnow
from mailbot.models.jobs import Subscriber, SubscriberStatus
from mailbot.services import Poke, consultations, inbound
from mailbot.services.delivery import verp_address
from tests.hostile import tally

GONE, FLAKY = "gone@example.org", "flaky@example.org"


def _run(ctx, pokes: list[Poke]) -> None:
    """What the actors would do, in-process: route, answer, count bounces."""
    for poke in pokes:
        if poke.actor == "run_command":
            _run(ctx, runner.run(ctx, poke.id))
        elif poke.actor == "bounce_recorded":
            with ctx.db.session() as session:
                subscriptions.record_bounce(session, ctx.settings, poke.id)
        elif poke.actor == "advance_consultation":
            consultations.advance(ctx, poke.id)      # one step: the acknowledgement


def _receive(ctx, raw: bytes, *, envelope_from: str, to: str) -> int:
    inbound_id = intake.accept(ctx.db, raw, source="smtp", envelope_from=envelope_from, envelope_to=[to])
    _run(ctx, inbound.process(ctx, inbound_id))
    return inbound_id


# -- bounce storm ----------------------------------------------------------------

def _sent(ctx, recipient: str, n: int) -> tuple[int, str]:
    """A message we sent to ``recipient`` (the one that bounces): (id, Message-ID)."""
    message_id = f"<digest-{n}.{recipient}@mailbot.localhost>"
    with ctx.db.session() as session:
        row = OutboundMessage(kind="digest", to_addr=recipient, message_id=message_id, raw=b"x", state="sent")
        session.add(row)
        session.flush()
        return row.id, message_id


def _dsn(recipient: str, n: int, sent: tuple[int, str], ctx) -> tuple[bytes, str, str]:
    """(raw, envelope sender, envelope recipient) of bounce number ``n``, in
    one of five shapes, about our message ``sent``: to its VERP return path,
    or (shapes 2 and 3, sent to other addresses) quoting its Message-ID."""
    verp, message_id = verp_address(ctx.settings, *sent), sent[1]
    shape = n % 5
    if shape == 0:      # RFC 3464 multipart/report
        return ((f"From: MAILER-DAEMON@mx{n % 3}.example.net\r\nTo: bounces@mailbot.localhost\r\n"
                 f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-{n}@mx.example.net>\r\n"
                 "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
                 "--b\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n--b\r\n"
                 "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
                 f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                 f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: unknown\r\n--b--\r\n").encode(), "<>", verp)
    if shape == 1:      # qmail: plain text, null sender
        return ((f"From: MAILER-DAEMON@qmail.example.net\r\nTo: bounces@mailbot.localhost\r\n"
                 f"Subject: failure notice\r\nMessage-ID: <qmail-{n}@qmail.example.net>\r\n\r\n"
                 f"Hi. This is the qmail-send program.\r\n<{recipient}>:\r\nSorry, no mailbox here by that name. "
                 "(#5.1.1)\r\n").encode(), "<>", verp)
    if shape == 2:      # Exim with X-Failed-Recipients, to the wrong address (ask@)
        return ((f"From: Mail Delivery System <Mailer-Daemon@exim.example.net>\r\nTo: ask@mailbot.localhost\r\n"
                 f"Subject: Mail delivery failed: returning message to sender\r\nX-Failed-Recipients: {recipient}\r\n"
                 f"Auto-Submitted: auto-replied\r\nMessage-ID: <exim-{n}@exim.example.net>\r\n\r\n"
                 f"  {recipient}\r\n    550 5.1.1 mailbox unavailable\r\n\r\n--- returned headers ---\r\n"
                 f"Message-ID: {message_id}\r\n").encode(), "", "ask@mailbot.localhost")
    if shape == 3:      # a DSN to a command address, with a command-looking subject
        return ((f"From: postmaster@mx.example.net\r\nTo: lookup@mailbot.localhost\r\nSubject: HELP\r\n"
                 f"Message-ID: <pm-{n}@mx.example.net>\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: multipart/report; report-type=delivery-status; boundary=c\r\n\r\n"
                 "--c\r\nContent-Type: text/plain\r\n\r\nLOOKUP 99213\r\n--c\r\n"
                 "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
                 f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.2.2\r\n--c\r\n"
                 f"Content-Type: text/rfc822-headers\r\n\r\nTo: {recipient}\r\nMessage-ID: {message_id}\r\n--c--\r\n").encode(),
                "<>", "lookup@mailbot.localhost")
    # shape 4: a delay notice (not permanent), null sender
    return ((f"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@mailbot.localhost\r\nSubject: Delayed Mail\r\n"
             f"Message-ID: <delay-{n}@mx.example.net>\r\nMIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=delivery-status; boundary=d\r\n\r\n"
             "--d\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
             f"Final-Recipient: rfc822; {recipient}\r\nAction: delayed\r\nStatus: 4.4.1\r\n--d--\r\n").encode(),
            "<>", verp)


def _request(n: int) -> bytes:
    return (f"From: Kim Coder <kim{n}@clinic.example>\r\nTo: lookup@mailbot.localhost\r\nSubject: LOOKUP 99213\r\n"
            f"Message-ID: <real-{n}@clinic.example>\r\n\r\nLOOKUP 99213\r\n").encode()


def test_a_bounce_storm_gets_no_reply_suspends_a_subscriber_and_loses_nothing(ctx, codes_db, db):
    ctx.settings.guards.daily_reply_cap = 1000
    with db.session() as session:
        for email in (GONE, FLAKY):
            session.add(Subscriber(email=email, status=SubscriberStatus.ACTIVE, confirmed_at=utcnow()))
    storm, real = 300, 20
    # GONE bounces permanently many times; FLAKY once (below the threshold of 3); others are strangers.
    recipients = [GONE if n % 10 == 0 else FLAKY if n == 7 else f"stranger{n % 40}@example.com" for n in range(storm)]
    dsn_ids, real_ids = [], []
    for n, recipient in enumerate(recipients):
        raw, sender, to = _dsn(recipient, n, _sent(ctx, recipient, n), ctx)
        dsn_ids.append(_receive(ctx, raw, envelope_from=sender, to=to))
        if n % (storm // real) == 0:
            real_ids.append(_receive(ctx, _request(n), envelope_from=f"kim{n}@clinic.example",
                                     to="lookup@mailbot.localhost"))

    with db.read() as session:
        rows = {r.id: r for r in session.exec(select(InboundMessage)).all()}
        outbound = session.exec(select(OutboundMessage)).all()
        events = session.exec(select(BounceEvent)).all()
        subscribers = {s.email: s for s in session.exec(select(Subscriber)).all()}
    # nothing lost: every message stored and routed
    assert len(rows) == storm + real and all(r.status != "received" for r in rows.values())
    # no reply to any report; exactly one to each real request
    assert not [o for o in outbound if o.inbound_id in dsn_ids]
    assert sorted(o.inbound_id for o in outbound if o.kind != "digest") == sorted(real_ids)
    assert all(rows[i].action == "bounce" for i in dsn_ids), {rows[i].action for i in dsn_ids}
    # one event per report, permanence as reported
    assert len(events) == storm
    assert sum(1 for e in events if not e.permanent) == sum(1 for n in range(storm) if n % 5 == 4)
    assert subscribers[GONE].status == SubscriberStatus.SUSPENDED
    assert subscribers[FLAKY].status == SubscriberStatus.ACTIVE and subscribers[FLAKY].bounce_count == 1
    tally.count("probe.bounce_storm_dsns", storm)
    tally.count("probe.bounce_storm_real_requests", real)


# -- header injection ----------------------------------------------------------------

def _b64(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


SUBJECTS = [
    "=?utf-8?q?Question=0D=0ABcc:_victim@evil.example?=",
    _b64("Question\r\nBcc: victim@evil.example\r\nX-Injected: yes"),
    "=?utf-8?q?Question=0ABcc:_victim@evil.example?=",
    "=?utf-8?q?Question=0DBcc:_victim@evil.example?=",
    "Question\u2028Bcc: victim@evil.example\u2029X-Injected: yes",
    "Question\u0085Bcc: victim@evil.example",
    "Question\x0bBcc: victim@evil.example\x0cX-Injected: yes",
    "Question\r\n Bcc: victim@evil.example",                      # folding: one line after unfolding
    _b64("Question\x00\r\n\r\n<html>body injection</html>"),
    # double-encoded: the parser decodes once, the stdlib would decode again on the way out
    _b64("Question =?utf-8?q?x=0D=0ABcc:_victim@evil.example?="),
    _b64("=?utf-8?b?" + base64.b64encode(b"x\r\nBcc: victim@evil.example").decode() + "?="),
    "Question=?utf-8?q?x=0D=0ABcc:_victim@evil.example?=",
]
# Message-IDs we thread on (In-Reply-To / References of our reply).
MESSAGE_IDS = [
    "<=?utf-8?q?a=0D=0ABcc:_victim@evil.example?=@example.org>",
    "<a@example.org> <=?utf-8?b?" + base64.b64encode(b"\r\nBcc: victim@evil.example").decode() + "?=@x>",
]
NAMES = [
    '"=?utf-8?q?Eve=0D=0ABcc:_victim@evil.example?=" <eve@example.org>',
    _b64("Eve\r\nTo: victim@evil.example") + " <eve@example.org>",
    '"Eve\u2028Bcc: victim@evil.example" <eve@example.org>',
    "Eve <eve@example.org>, Victim <victim@evil.example>",
    '"=?utf-8?q?victim@evil.example_=3Cvictim@evil.example=3E?=" <eve@example.org>',
    "eve@example.org (Bcc: victim@evil.example)",
    '"Eve\\"\\r\\nBcc: victim@evil.example" <eve@example.org>',
    '"=?utf-8?q?a=0D=0ABcc:_victim@evil.example?="@example.org',          # in the local part
    _b64('Eve", victim@evil.example, "x') + " <eve@example.org>",
]
ALLOWED = {"from", "to", "subject", "date", "message-id", "in-reply-to", "references", "x-loop", "x-mailbot-kind",
           "auto-submitted", "x-auto-response-suppress", "precedence", "mime-version", "content-type",
           "content-transfer-encoding"}


def _assert_clean(out: OutboundMessage, expected_to: str) -> None:
    head = out.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")       # 8-bit in our headers would be a bug too
    names = [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and not line[0].isspace()]
    assert set(names) <= ALLOWED, (set(names) - ALLOWED, head)
    assert all(names.count(n) == 1 for n in names), head
    assert all(re.match(r"^[\x21-\x39\x3b-\x7e]+:", line) or line[:1] in (" ", "\t")
               for line in head.split("\r\n")), head
    message = BytesParser(policy=policy.default).parsebytes(out.raw)
    assert [a.addr_spec for a in message["To"].addresses] == [expected_to]
    assert out.to_addr == expected_to
    assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])


def test_crlf_and_bcc_smuggling_in_subjects_and_names_never_reach_our_headers(ctx, codes_db, db):
    ctx.settings.guards.daily_reply_cap = 1000
    cases = [(subject, "Eve <eve@example.org>", "") for subject in SUBJECTS] + \
            [("LOOKUP 99213", name, "") for name in NAMES] + \
            [("LOOKUP 99213", "Eve <eve@example.org>", ids) for ids in MESSAGE_IDS]
    checked = 0
    for n, (subject, sender, thread) in enumerate(cases):
        for to in ("lookup@mailbot.localhost", "ask@mailbot.localhost"):
            command_subject = subject if to.startswith("ask") else f"LOOKUP 99213 {subject}"
            ids = (f"Message-ID: <inj-{n}-{to[:3]}@example.org>\r\n" if not thread else
                   f"Message-ID: {thread.split()[-1][:-1]}-{to[:3]}>\r\nIn-Reply-To: {thread.split()[-1]}\r\n"
                   f"References: {thread}\r\n")
            raw = (f"From: {sender}\r\nTo: {to}\r\nSubject: {command_subject}\r\n{ids}"
                   "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                   "LOOKUP 99213 -- is 99213 right for this visit?\r\n").encode("utf-8")
            inbound_id = _receive(ctx, raw, envelope_from="eve@example.org", to=to)
            with db.read() as session:
                row = session.get(InboundMessage, inbound_id)
                sent = session.exec(select(OutboundMessage).where(OutboundMessage.inbound_id == inbound_id)).all()
            assert row.status == "processed", (row.status, row.error, sender, subject)
            assert len(sent) == 1, (to, sender, subject, row.route)
            _assert_clean(sent[0], row.reply_to or row.from_addr)
            assert "victim@evil.example" not in (row.reply_to or row.from_addr)
            checked += 1
    tally.count("probe.header_injection_replies", checked)


def test_a_double_encoded_subject_or_name_cannot_add_a_header_to_our_reply():
    """Regression: the stdlib decodes encoded words in a header value it is
    given, so a sender's subject decoded once by the parser to
    "=?utf-8?q?x=0D=0ABcc:...?=" became a real Bcc: line in our reply."""
    from mailbot.mail.compose import Envelope, Rendered, build

    smuggled = "=?utf-8?q?x=0D=0ABcc:_victim@evil.example?="
    message = build(Rendered(subject=f"Re: {smuggled}", text="x", html=None),
                    Envelope(to="eve@example.org", to_name=smuggled, from_addr="lookup@mailbot.localhost"),
                    domain="mailbot.localhost", kind="lookup")
    head = message.as_bytes().split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in head and message["Bcc"] is None
    tally.count("probe.header_injection_unit")


def test_an_encoded_word_in_a_message_id_cannot_add_a_header_through_in_reply_to():
    """Regression: In-Reply-To/References of "<=?utf-8?q?a=0D=0ABcc:...?=@x>"
    wrote a Bcc: line into our reply; such ids are no longer threaded on."""
    from mailbot.mail.compose import Envelope, Rendered, build

    hostile = "<=?utf-8?q?a=0D=0ABcc:_victim@evil.example?=@x>"
    message = build(Rendered(subject="Re: q", text="x", html=None),
                    Envelope(to="eve@example.org", from_addr="ask@mailbot.localhost", in_reply_to=hostile,
                             references=["<ok@example.org>", hostile]),
                    domain="mailbot.localhost", kind="ack")
    head = message.as_bytes().split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in head and message["In-Reply-To"] is None
    assert str(message["References"]) == "<ok@example.org>"
    tally.count("probe.header_injection_unit")
