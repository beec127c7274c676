"""An open-relay probe against the real SMTP listener: every recipient that
is not one of our service addresses is refused at RCPT with 550, whatever
disguise it wears (percent hack, source route, quoted local part, bang path,
IP literal, trailing dot, case, length, a smuggled second command); nothing
is stored; only our real service addresses get 250.  Oversized messages get
552 and are not stored either.

``tests/mail/test_smtp_listener.py`` covers the ordinary refusals; this is
the adversarial list, counted into bench/results/hostile.json.
"""

from __future__ import annotations

import smtplib
import socket

import pytest
from sqlmodel import select

from mailbot.context import Context
from mailbot.mail.smtp_listener import SmtpListener
from mailbot.models import InboundMessage
from tests.conftest import make_settings
from tests.hostile import tally

OURS = [
    "ask@mailbot.localhost", "lookup@mailbot.localhost", "jobs@mailbot.localhost", "bounces@mailbot.localhost",
    "ASK@MAILBOT.LOCALHOST", "Lookup@Mailbot.Localhost", "ask+billing@mailbot.localhost",
    "jobs+weekly@mailbot.localhost",
]

# Our own addresses written oddly: accepting them is not relaying (aiosmtpd
# reads the address as RFC 5322 does), refusing them is fine too.
ODD_BUT_OURS = ["ask @mailbot.localhost", "ask@ mailbot.localhost", '"ask"@mailbot.localhost',
                "@evil.example:ask@mailbot.localhost", "ask(comment)@mailbot.localhost", "ask@mailbot.localhost."]

NOT_OURS = [
    # other domains, and ours as a prefix or suffix of someone else's
    "someone@gmail.example", "ask@evil.example", "ask@mailbot.localhost.evil.example",
    "ask@sub.mailbot.localhost", "ask@evilmailbot.localhost", "ask@localhost", "ask@mailbot",
    "ask@m\u0430ilbot.localhost",                                        # Cyrillic a
    "USER@EVIL.EXAMPLE", "user@evil.example.",
    # the percent hack
    "user%evil.example@mailbot.localhost", "ask%evil.example@mailbot.localhost",
    "user%evil.example%mailbot.localhost@mailbot.localhost",
    # source routes
    "@a.example,@b.example:user@c.example", "@mailbot.localhost:user@evil.example",
    "@mailbot.localhost,@evil.example:victim@evil.example",
    # quoted local parts
    '"user@evil.example"@mailbot.localhost', '"ask@evil.example"@mailbot.localhost',
    '"user%evil.example"@mailbot.localhost', '"ask"@evil.example',
    # bang paths
    "evil.example!user@mailbot.localhost", "evil.example!user", "mailbot.localhost!evil.example!user",
    "evil.example!ask", "user!evil.example@mailbot.localhost",
    # IP literals
    "user@[127.0.0.1]", "ask@[127.0.0.1]", "ask@[IPv6:::1]", "user@[10.0.0.1]",
    # two at-signs, empty parts, junk
    "ask@mailbot.localhost@evil.example", "user@evil.example@mailbot.localhost", "@mailbot.localhost",
    "ask@", "ask", "", "postmaster@evil.example",
    "ask@mailbot.localhost,victim@evil.example", "ask@mailbot.localhost;victim@evil.example",
    # overly long
    "a" * 300 + "@mailbot.localhost", "ask@" + "a" * 300 + ".example", "x" * 5000 + "@evil.example",
]


@pytest.fixture
def listener(tmp_path, db):
    settings = make_settings(tmp_path, db, **{"smtp.max_message_size": 64 * 1024})
    smtp = SmtpListener(Context(settings, db=db))
    smtp.start()
    yield smtp
    smtp.stop()


def _rcpt(client: smtplib.SMTP, address: str) -> tuple[int, bytes]:
    client.rset()
    client.mail("probe@example.org", ["SMTPUTF8"])  # lookalike domains arrive as UTF-8
    return client.docmd(f"RCPT TO:<{address}>")


def test_every_disguised_foreign_recipient_is_refused_and_only_ours_accepted(listener, db):
    accepted, refused = [], []
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
        client.ehlo("probe.example")
        for address in NOT_OURS:
            code, reply = _rcpt(client, address)
            (accepted if code == 250 else refused).append((address, code, reply))
            assert 500 <= code < 600, (address, code, reply)
        for address in OURS:
            code, reply = _rcpt(client, address)
            assert code == 250, (address, code, reply)
        odd = [_rcpt(client, address)[0] for address in ODD_BUT_OURS]
        # DATA with every recipient refused is refused too: nothing stored.
        client.rset()
        client.mail("probe@example.org")
        client.docmd("RCPT TO:<victim@evil.example>")
        code, _ = client.docmd("DATA")
        assert code == 503
    assert not accepted
    with db.read() as session:
        assert session.exec(select(InboundMessage.id)).all() == []
    tally.count("probe.rcpt_refused", len(NOT_OURS))
    tally.count("probe.rcpt_refused_550", sum(1 for _, code, _ in refused if code == 550))
    tally.count("probe.rcpt_refused_syntax_5xx", sum(1 for _, code, _ in refused if code != 550))
    tally.count("probe.rcpt_accepted_ours", len(OURS))
    tally.count("probe.rcpt_odd_but_ours", len(ODD_BUT_OURS))
    tally.count("probe.rcpt_odd_but_ours_accepted", odd.count(250))


def test_a_second_recipient_smuggled_after_a_line_break_is_refused(listener, db):
    """Pipelined raw lines: our address, then a foreign one on the next line."""
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
        stream = sock.makefile("rwb")
        stream.readline()
        stream.write(b"HELO probe.example\r\n")
        stream.flush()
        stream.readline()
        stream.write(b"MAIL FROM:<probe@example.org>\r\n")
        stream.flush()
        assert stream.readline().startswith(b"250")
        stream.write(b"RCPT TO:<ask@mailbot.localhost>\r\nRCPT TO:<victim@evil.example>\r\n"
                     b"RCPT TO:<ask@mailbot.localhost>\rRCPT TO:<victim@evil.example>\r\n")
        stream.flush()
        first, second, third = stream.readline(), stream.readline(), stream.readline()
        stream.write(b"QUIT\r\n")
        stream.flush()
    assert first.startswith(b"250") and second.startswith(b"550")
    assert not third.startswith(b"250"), third        # a bare CR does not end a command line
    tally.count("probe.rcpt_refused", 2)


def test_an_oversized_message_is_refused_with_552_and_not_stored(listener, db):
    big = b"From: a@example.org\r\nTo: ask@mailbot.localhost\r\nSubject: big\r\n\r\n" + b"x" * 990 + b"\r\n"
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
        # Declared in advance (SIZE=): refused at MAIL FROM.
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.org", ["ask@mailbot.localhost"], big * 80)
        assert refused.value.smtp_code == 552
        # Not declared: refused after DATA.
        client.rset()
        client.mail("a@example.org")
        client.rcpt("ask@mailbot.localhost")
        code, _ = client.data(big * 80)
        assert code == 552
    with db.read() as session:
        assert session.exec(select(InboundMessage.id)).all() == []
    tally.count("probe.oversized_552", 2)
