"""``RelayConnection.send_many``: many messages over one relay session,
pipelined (RFC 2920) when the relay offers it, with an outcome per message."""

from __future__ import annotations

import smtplib

import pytest

from mailbot.mail.send import DeliveryError, RelayConnection, RelaySender, _dot_stuffed
from tests.support.relay_sink import RelaySink


def _message(n: int) -> bytes:
    return (f"Subject: m{n}\r\nMessage-ID: <m{n}@x.org>\r\n\r\n"
            f".a line starting with a dot\r\n..two dots\r\nbody {n}\r\n.\r\nend").encode()


@pytest.mark.parametrize("raw", [b"a\r\n.b\r\n", b".x\r\nb\r\n..c", b"abc", b"\r\n.\r\n.\r\n", b"x\r\n."])
def test_dot_stuffing_is_what_smtplib_sends(raw):
    quoted = smtplib._quote_periods(raw)
    assert _dot_stuffed(raw) == quoted + (b"" if quoted.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def test_bare_line_feeds_are_sent_as_crlf():
    assert _dot_stuffed(b"a\n.b\rc") == b"a\r\n..b\r\nc\r\n.\r\n"


@pytest.mark.parametrize("pipelining", [True, False])
def test_send_many_delivers_each_message_once_byte_for_byte(pipelining):
    with RelaySink(pipelining=pipelining) as relay:
        conn = RelayConnection(RelaySender("127.0.0.1", relay.port))
        outcomes = conn.send_many([(_message(n), "bounces@x.org", [f"u{n}@x.org"]) for n in range(7)])
        outcomes += conn.send_many([(_message(7), "bounces@x.org", [f"u7@x.org"])])   # the session is reused
        conn.close()
        assert outcomes == [None] * 8
        got = sorted(relay.messages, key=lambda m: m.recipients)
        assert [m.recipients for m in got] == [[f"u{n}@x.org"] for n in range(8)]
        assert all(m.raw == _message(n) + b"\r\n" for n, m in enumerate(got))     # (the content ends with a line end)


def test_a_refused_recipient_fails_its_message_only_and_the_session_goes_on():
    with RelaySink(pipelining=True, refuse={"u1@x.org": "550 5.1.1 no such user",
                                            "u3@x.org": "451 4.3.0 try later"}) as relay:
        conn = RelayConnection(RelaySender("127.0.0.1", relay.port))
        outcomes = conn.send_many([(_message(n), "bounces@x.org", [f"u{n}@x.org"]) for n in range(5)])
        conn.close()
        assert [o is None for o in outcomes] == [True, False, True, False, True]
        assert isinstance(outcomes[1], DeliveryError) and outcomes[1].permanent and "550" in str(outcomes[1])
        assert not outcomes[3].permanent and "451" in str(outcomes[3])
        assert sorted(m.recipients[0] for m in relay.messages) == ["u0@x.org", "u2@x.org", "u4@x.org"]


def test_a_relay_closing_mid_batch_makes_the_rest_a_temporary_failure():
    with RelaySink(pipelining=True, break_after=2) as relay:
        conn = RelayConnection(RelaySender("127.0.0.1", relay.port))
        outcomes = conn.send_many([(_message(n), "bounces@x.org", [f"u{n}@x.org"]) for n in range(5)])
        conn.close()
        assert outcomes[:2] == [None, None] and len(relay.messages) == 2
        assert all(isinstance(o, DeliveryError) and not o.permanent for o in outcomes[2:])


def test_an_unreachable_relay_fails_every_message_for_now():
    conn = RelayConnection(RelaySender("127.0.0.1", 9, timeout=2))
    outcomes = conn.send_many([(_message(n), "bounces@x.org", [f"u{n}@x.org"]) for n in range(3)])
    assert all(isinstance(o, DeliveryError) and not o.permanent for o in outcomes)
