"""The listener reads ``MAIL FROM``/``RCPT TO`` addresses in their common
form with one regex (issue 16); whatever it reads must be exactly what
aiosmtpd's own parser (the stdlib's RFC 5322 one) reads, and everything
else must still go to that parser."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.mail.smtp_listener import _SizedLMTP, _SizedSMTP


class _Handler:
    pass


def servers():
    return [_SizedSMTP(1000, _Handler()), _SizedLMTP(1000, _Handler())]


STOCK = SMTP(_Handler())
FAST = _SizedSMTP(1000, _Handler())

FORMS = [
    "<a@b>", "<coder7@clinic.example>", "<A.B+tag@Ex-ample.COM> SIZE=2048", "<a@b>  SIZE=10 BODY=8BITMIME",
    "<a@b>\tSIZE=1", "<a@b> ", "<a@b>x", "<a@b>(comment) SIZE=1", "<a@b> (c) SIZE=1", "<>", "<> SIZE=5",
    "<a@[192.0.2.1]>", '<"a b"@c.example>', "<@relay.example:a@b.example>", "<a@b.>", "<a.@b>", "<.a@b>",
    "<a..b@c>", "<a@b..c>", "<a@-b.c>", "<a@b_c.d>", "<=?utf-8?q?x?=@b.example>", "<x=?y@b>", "<a@b>>",
    "<<a@b>", "<a@b", "a@b", " <a@b>", "<a @b>", "<a@ b>", "<é@b.example>", "<a@bé.example>",
    "<" + "l" * 64 + "@b>", "<" + "l" * 65 + "@b>", "<bounce+123-abc=example.org@mailbot.localhost>",
    "<a@b>\x0bSIZE=1", "<a@b> \x0c SIZE=1", "<a@b>\u3000SIZE=1", "<a!#$%&'*+/=?^_`{|}~-@b>",
]


def read(server, arg: str):
    """``_getaddr``'s answer, or the exception it raised (the stdlib parser
    raises AttributeError on some malformed input; aiosmtpd answers 500)."""
    try:
        return server._getaddr(arg)
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("arg", FORMS)
def test_the_fast_path_reads_what_aiosmtpds_parser_reads(arg):
    for server in servers():
        assert read(server, arg) == read(STOCK, arg), arg


ALPHABET = st.sampled_from(list("ab.-+_=?@<>()\"[]: \t\x0bé1Z!~/\\,;"))


@settings(max_examples=2000, deadline=None)
@given(st.text(ALPHABET, max_size=24), st.text(ALPHABET, max_size=12))
def test_any_argument_reads_as_aiosmtpd_reads_it(inner, tail):
    for arg in (f"<{inner}>{tail}", f"<{inner}@{tail}>", inner + tail):
        assert read(FAST, arg) == read(STOCK, arg), repr(arg)


@pytest.mark.parametrize("arg", ["<" + "l" * 64 + "@b.example>", "<" + "l" * 65 + "@b.example> SIZE=1"])
def test_the_local_part_limit_holds_on_the_fast_path_too(arg):
    stock, fast = SMTP(_Handler()), _SizedSMTP(1000, _Handler())
    stock.local_part_limit = fast.local_part_limit = 64
    assert read(fast, arg) == read(stock, arg)
