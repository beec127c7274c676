"""List-Unsubscribe through the stdlib path (``compose.build``: job and
code-update digests, subscription confirmations): a long signed link must
stay a readable ``<URI>`` list, never RFC 2047 encoded words, which mail
clients do not decode (the one-click unsubscribe would be hidden)."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from mailbot.mail.mailpolicy import POLICY
from mailbot.mail.send import as_bytes

LONG_URL = "<https://mailbot.example.org/unsubscribe/" + "Ab9-_" * 40 + ">"
MAILTO = "<mailto:unsubscribe+" + "t0k3n" * 12 + "@mailbot.example.org>"


def _wire(value: str) -> tuple[str, EmailMessage]:
    message = EmailMessage(policy=POLICY)
    message["Subject"] = "Your digest"
    message["List-Unsubscribe"] = value
    message.set_content("hello")
    raw = as_bytes(message)
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii"), BytesParser(policy=policy.default).parsebytes(raw)


def test_a_long_list_unsubscribe_is_folded_after_the_comma_not_encoded():
    head, parsed = _wire(f"{LONG_URL}, {MAILTO}")
    assert "=?" not in head
    assert f"List-Unsubscribe: {LONG_URL},\r\n {MAILTO}\r\n" in head + "\r\n"
    assert str(parsed["List-Unsubscribe"]) == f"{LONG_URL}, {MAILTO}"
    assert all(len(line) <= 998 for line in head.split("\r\n"))


def test_a_short_list_unsubscribe_reads_back_the_same():
    head, parsed = _wire("<mailto:u@example.org>")
    assert "List-Unsubscribe: <mailto:u@example.org>\r\n" in head + "\r\n"
    assert str(parsed["List-Unsubscribe"]) == "<mailto:u@example.org>"


def test_a_value_that_is_no_uri_list_is_folded_as_text_as_before():
    text = "please write to the list owner " + "ünïcode " * 20
    head, parsed = _wire(text)
    assert "=?utf-8?" in head           # non-ASCII free text still needs encoded words
    assert str(parsed["List-Unsubscribe"]).strip() == text.strip()
