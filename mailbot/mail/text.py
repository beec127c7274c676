"""The text of a message: which part, which charset, what is new.

- :func:`body_text` picks the plain part (or converts an HTML-only message
  with html2text), and for a message that only forwards another one, the
  forwarded message's text;
- :func:`decode_part` / :func:`decode_bytes` decode whatever the charset
  label says -- or fails to say: declared charset, then UTF-8, then
  Windows-1252 strictly, else replacement characters, never an exception;
- :func:`new_text` is what the sender wrote this time: the text above our
  reply marker (``mail.compose.REPLY_MARKER``) with quoted history and
  signatures removed by mail-parser-reply.
"""

from __future__ import annotations

import re
from email.message import EmailMessage, Message

import html2text
from mailparser_reply import EmailReplyParser

from mailbot.mail.compose import REPLY_MARKER
from mailbot.mail.limits import MAX_HTML_CHARS

_FORWARDED = re.compile(r"^\s*(-{2,}\s*(Forwarded message|Weitergeleitete Nachricht|Message transf[ée]r[ée])\s*-{2,}|Begin forwarded message:)", re.I | re.M)
_REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv"]
# Charsets that name no charset; seen in the wild.
_NO_CHARSET = {"", "unknown-8bit", "x-unknown", "unknown", "default", "charset"}


def decode_part(part: Message) -> str:
    """The text of a leaf part, whatever its declared charset says."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        payload = b""
    if isinstance(payload, str):  # pragma: no cover - decode=True gives bytes
        return payload
    return decode_bytes(payload, (part.get_content_charset() or "").lower())


def decode_bytes(data: bytes, charset: str) -> str:
    """Declared charset, then UTF-8, then Windows-1252 (what mislabelled
    Western mail almost always is), strictly; else the declared charset
    (or UTF-8) with replacement characters."""
    declared = [] if charset in _NO_CHARSET else [charset]
    # ValueError covers UnicodeDecodeError and a charset name the codec
    # machinery refuses outright ("utf-8\x00": "embedded null character").
    for candidate in declared + ["utf-8", "cp1252"]:
        try:
            return data.decode(candidate)
        except (LookupError, ValueError):
            continue
    for candidate in declared + ["utf-8"]:
        try:
            return data.decode(candidate, errors="replace")
        except (LookupError, ValueError):
            continue
    return data.decode("utf-8", errors="replace")  # pragma: no cover


def body_text(msg: EmailMessage) -> tuple[str, str]:
    """``(text, html)`` of the message body.

    The plain part is preferred; an HTML-only message is converted to text.
    A message whose own body is empty but which forwards another message
    (``message/rfc822``) uses the forwarded message's text."""
    plain = find_body(msg, "plain")
    html_part = find_body(msg, "html")
    html = decode_part(html_part) if html_part is not None else ""
    if plain is not None:
        text = decode_part(plain)
    elif html:
        text = html_to_text(html)
    else:
        text = ""
    if not text.strip():
        for part in msg.walk():
            if part.get_content_type() == "message/rfc822":
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(inner, EmailMessage):
                    inner_text, inner_html = body_text(inner)
                    text, html = inner_text, html or inner_html
                    break
    return _normalize(text), html


def find_body(msg: EmailMessage, subtype: str) -> Message | None:
    try:
        return msg.get_body(preferencelist=(subtype,))
    except Exception:
        return None


def html_to_text(html: str) -> str:
    # html2text is pure Python, ~4 s per MB: an 8 MB HTML-only message took
    # 34 s of a worker (issue 17, point 15).  Only the start is converted.
    html = html[:MAX_HTML_CHARS]
    converter = html2text.HTML2Text()
    converter.ignore_images = True
    converter.body_width = 0          # no hard wrapping: keeps codes and sentences whole
    converter.ignore_emphasis = True
    try:
        return converter.handle(html)
    except Exception:  # html2text chokes on rare malformed markup
        return re.sub(r"<[^>]+>", " ", html)


def _normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def new_text(full_text: str) -> str:
    """What the sender wrote this time: above our reply marker, without
    quoted history or signature.  A forwarded message is kept whole: the
    forwarded part is the question."""
    if _FORWARDED.search(full_text):
        return full_text.strip()
    lines = full_text.split("\n")
    for i, line in enumerate(lines):
        if REPLY_MARKER in line:
            lines = lines[:i]
            # The "On <date>, <someone> wrote:" line usually precedes the quote.
            while lines and (not lines[-1].strip() or lines[-1].rstrip().endswith(":")):
                lines.pop()
            break
    text = "\n".join(lines)
    try:
        message = EmailReplyParser(languages=_REPLY_LANGUAGES).read(text)
        replies = message.replies
        latest = replies[0].body if replies else ""
        if not latest.strip():
            latest = message.latest_reply or ""
    except Exception:  # the library is heuristic; never lose the text over it
        latest = text
    latest = latest.strip() or text.strip()
    return _normalize(latest)
