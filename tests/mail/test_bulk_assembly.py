"""``compose.build_bytes`` (the bulk MIME assembler) makes the message
``compose.build`` makes; relay sessions are reused and survive the relay
closing them."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from mailbot.mail import compose
from mailbot.mail.send import RelaySender, as_bytes
from tests.support.relay_sink import RelaySink

RENDERED = compose.Rendered(
    "Héllo =?utf-8?q?x?= digest",
    "Line one  \nÜnïcode line with trailing space \n.dot line\n" + "x" * 200 + "\nend=\n",
    '<html><body><p style="color:red">Hi ünï</p>\n' + "<td>" * 100 + "</body></html>\n",
)
ENVELOPE = compose.Envelope(to="a@example.org", to_name="Zoë Q", from_addr="jobs@x.org", from_name="Mailbot",
                            auto_reply=False, extra_headers={"List-Id": "x <jobs.x.org>"})


def _parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def test_build_bytes_gives_the_same_headers_and_bodies_as_build():
    _, raw = compose.build_bytes(RENDERED, ENVELOPE, domain="x.org", kind="digest", message_id="<m1@x.org>")
    ours = _parse(raw)
    reference = _parse(as_bytes(compose.build(RENDERED, ENVELOPE, domain="x.org", kind="digest",
                                              message_id="<m1@x.org>")))
    assert list(ours.keys()) == list(reference.keys())
    assert all(str(ours[k]) == str(reference[k]) for k in reference.keys() if k not in ("Date", "Content-Type"))
    for kind in ("plain", "html"):
        assert ours.get_body((kind,)).get_content() == reference.get_body((kind,)).get_content()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")


def test_build_bytes_text_only():
    _, raw = compose.build_bytes(compose.Rendered("s", "only text\n", None), ENVELOPE, domain="x.org", kind="help")
    assert _parse(raw).get_content().replace("\r\n", "\n") == "only text\n"


def test_a_relay_session_is_reused_and_reopened_after_the_relay_drops_it():
    _, raw = compose.build_bytes(RENDERED, ENVELOPE, domain="x.org", kind="digest")
    with RelaySink() as sink:
        sender = RelaySender("127.0.0.1", sink.port, timeout=5)
        sender.send(raw, envelope_from="bounces@x.org", recipients=["a@example.org"])
        first = sender._local.conn.smtp
        sender.send(raw, envelope_from="bounces@x.org", recipients=["b@example.org"])
        assert sender._local.conn.smtp is first                      # same session
        first.sock.close()                                           # the relay's idle timeout, say
        sender.send(raw, envelope_from="bounces@x.org", recipients=["c@example.org"])
        assert [m.recipients for m in sink.messages] == [["a@example.org"], ["b@example.org"], ["c@example.org"]]


def test_a_session_fresh_from_a_250_skips_the_rset_and_an_idle_one_is_checked():
    from mailbot.mail import send

    _, raw = compose.build_bytes(RENDERED, ENVELOPE, domain="x.org", kind="digest")
    with RelaySink() as sink:
        sender = RelaySender("127.0.0.1", sink.port, timeout=5)
        sender.send(raw, envelope_from="bounces@x.org", recipients=["a@example.org"])
        conn = sender._local.conn
        checks = []
        rset = conn.smtp.rset
        conn.smtp.rset = lambda: checks.append(1) or rset()         # count the RSETs the session sees
        sender.send(raw, envelope_from="bounces@x.org", recipients=["b@example.org"])
        sender.send(raw, envelope_from="bounces@x.org", recipients=["c@example.org"])
        assert checks == []                                          # straight to MAIL after a 250
        conn._clean_at -= send.FRESH_SECONDS + 1                     # as if idle since
        sender.send(raw, envelope_from="bounces@x.org", recipients=["d@example.org"])
        assert checks == [1]
        sink.answer("451 4.3.0 try later")                           # a failed transaction ...
        with pytest.raises(send.DeliveryError) as refused:
            sender.send(raw, envelope_from="bounces@x.org", recipients=["e@example.org"])
        assert not refused.value.permanent
        sink.answer(None)
        before = len(checks)                                         # (smtplib itself resets after a 4xx)
        sender.send(raw, envelope_from="bounces@x.org", recipients=["f@example.org"])
        assert len(checks) == before + 1                             # ... is followed by an RSET
        assert [m.recipients for m in sink.messages] == [[f"{x}@example.org"] for x in "abcdf"]
