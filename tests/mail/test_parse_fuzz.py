"""Mangled mail never crashes the parser: it parses or says why it cannot."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.mail.parse import ParseError, parse
from tests.mail.conftest import corpus

SAMPLES = [p.read_bytes() for p in corpus()]


@st.composite
def mangled(draw) -> bytes:
    raw = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 8))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
        if action == "flip":
            raw[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at:at + draw(st.integers(1, 200))]
        elif action == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=40))
        else:
            raw[at:at] = draw(st.sampled_from([
                b"\nContent-Type: multipart/mixed; boundary=\"\"\n", b"\nContent-Transfer-Encoding: base64\n",
                b"\nSubject: =?utf-8?b?!!!?= =?x-bogus?q?=ZZ?=\n", b"\nFrom: <<@>>\n",
                b"\nContent-Type: text/plain; charset=\"\xff\xfe\"\n", b"\nMessage-ID: <\n",
            ]))
    return bytes(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mangled())
def test_mangled_messages_parse_or_fail_with_a_reason(raw):
    try:
        parsed = parse(raw, envelope_from="fuzz@example.org")
    except ParseError as exc:
        assert str(exc)
        return
    assert isinstance(parsed.text, str) and isinstance(parsed.subject, str)
    assert parsed.message_id.startswith("<")
    assert all(a.size >= 0 for a in parsed.attachments)
