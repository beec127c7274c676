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

import codecs
import re
from email.message import EmailMessage, Message

import html2text
from mailparser_reply import EmailReplyParser

from mailbot.mail.compose import REPLY_MARKER
from mailbot.mail.limits import MAX_HTML_CHARS, MAX_HTML_SCAN_CHARS

_FORWARDED = re.compile(r"^\s*(-{2,}\s*(Forwarded message|Weitergeleitete Nachricht|Message transf[ée]r[ée])\s*-{2,}|Begin forwarded message:)", re.I | re.M)
_REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv"]
# Where quoted history starts, per mail client, when the reply library misses
# it (one pattern per line that opens the history; the reply is above it).
QUOTE_HEADERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("GroupWise", re.compile(r"^>>>\s*.{1,200}?\s*>>>\s*$")),
    ("Lotus Notes", re.compile(r"^.{1,200}\bwrote on .{1,80}:\s*$", re.I)),
    ("Outlook / Android original message", re.compile(
        r"^\s*-{2,}\s*(original message|original-nachricht|ursprüngliche nachricht|message d'origine|"
        r"mensaje original|messaggio originale|oorspronkelijk bericht|originalmeddelande)\s*-{2,}\s*$", re.I)),
    ("Outlook header block", re.compile(r"^\s*\*{0,2}(from|von|de|van|da|från)\s*:\*{0,2}\s.{1,300}$", re.I)),
    ("Outlook Web separator", re.compile(r"^\s*(_{20,}|(\*\s*){3}|-{20,})\s*$")),   # "* * *": an <hr> in HTML
    ("attribution", re.compile(
        r"^\s*(on|am|le|el|il|op|den|em)\s.{4,250}\s(wrote|schrieb|a écrit|escribió|ha scritto|schreef|"
        r"skrev|escreveu)\s*:?\s*$", re.I)),
)
# The line after an "Outlook header block" From: must be one of these for it
# to be a quoted header and not the sender's own sentence ("From: ...").
_HEADER_FOLLOWERS = re.compile(r"^\s*\*{0,2}(sent|date|to|gesendet|datum|an|envoyé|enviado|inviato|verzonden|"
                               r"skickat|subject|betreff|objet|asunto|oggetto|onderwerp|ämne)\s*:", re.I)
# Charset labels Python does not know, as real mailers write them.
_CHARSET_ALIASES = {
    "x-unicode-2-0-utf-7": "utf-7", "unicode-2-0-utf-7": "utf-7", "x-unicode-1-1-utf-7": "utf-7",
    "unicode-1-1-utf-8": "utf-8", "x-unicode-2-0-utf-8": "utf-8", "ks_c_5601-1987": "cp949",
    "x-sjis": "shift_jis", "x-mac-roman": "mac_roman", "x-user-defined": "cp1252", "windows-874": "cp874",
}
_PGP_SIGNED = re.compile(r"^-----BEGIN PGP SIGNED MESSAGE-----\n(?:[A-Za-z-]+:[^\n]*\n)*\n(.*?)"
                         r"^-----BEGIN PGP SIGNATURE-----\n.*?^-----END PGP SIGNATURE-----\n?", re.S | re.M)
# Declared charsets that are often wrong: mail labelled UTF-8 or ASCII that
# is really Windows-1252 (see decode_bytes).
_MISLABEL_PRONE = {"utf-8", "ascii"}
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
    """Decode ``data`` as its declared charset says; never raises.

    - a known declared charset that decodes cleanly is used as is;
    - one with a few bad bytes (real text in that charset, one byte mangled
      on the way) keeps the charset, with only those bytes replaced -- not
      the whole body re-read as something else;
    - but a body with no valid multi-byte character at all under a declared
      UTF-8 or US-ASCII is mislabelled Western mail: Windows-1252;
    - no charset, or an unknown one: UTF-8, then Windows-1252, strictly.
    """
    declared = "" if charset in _NO_CHARSET else _codec(charset)
    if declared:
        try:
            return data.decode(declared)
        except (LookupError, ValueError):
            pass
        if declared not in _MISLABEL_PRONE:
            return data.decode(declared, errors="replace")
        replaced = data.decode("utf-8", errors="replace")
        if any(ord(ch) > 127 and ch != "\ufffd" for ch in replaced):
            return replaced      # real UTF-8 with a bad byte or two
    for candidate in ("utf-8", "cp1252"):
        try:
            return data.decode(candidate)
        except ValueError:
            continue
    return data.decode("utf-8", errors="replace")


def _codec(charset: str) -> str:
    """The Python codec for a charset label, or "" when there is none (a
    label the codec machinery refuses -- "utf-8\x00" -- included)."""
    try:
        return codecs.lookup(_CHARSET_ALIASES.get(charset, charset)).name
    except (LookupError, ValueError, TypeError):
        return ""


def body_text(msg: EmailMessage) -> tuple[str, str]:
    """``(text, html)`` of the message body.

    The plain part is preferred; an HTML-only message is converted to text.
    A message whose own body is empty but which forwards another message
    (``message/rfc822``) uses the forwarded message's text."""
    plain = find_body(msg, "plain")
    html_part = find_body(msg, "html")
    # NUL never carries meaning in HTML, and PostgreSQL text cannot hold it.
    # Bounded here, where it is decoded: both what is converted to text and
    # what is kept beside it for the reviewer (an 8 MB HTML body held the
    # database's write lock while it was stored).
    html = decode_part(html_part).replace("\x00", "")[:MAX_HTML_SCAN_CHARS] if html_part is not None else ""
    text = decode_part(plain) if plain is not None else ""
    if not text.strip() and html:
        # An empty text/plain alternative (Outlook sends these) must not hide the HTML.
        text = html_to_text(html)
    if not text.strip():
        for part in msg.walk():
            if part.get_content_type() == "message/rfc822":
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(inner, EmailMessage):
                    inner_text, inner_html = body_text(inner)
                    text, html = inner_text, html or inner_html
                    break
    return _normalize(strip_inline_pgp(text.replace("\r\n", "\n"))), html


def strip_inline_pgp(text: str) -> str:
    """The signed text of an inline PGP (cleartext-signed) message, armor and
    signature removed and dash-escaping undone (RFC 4880, 7.1)."""
    if "-----BEGIN PGP SIGNED MESSAGE-----" not in text:
        return text

    def unwrap(match: re.Match[str]) -> str:
        return re.sub(r"^- ", "", match.group(1), flags=re.M)

    return _PGP_SIGNED.sub(unwrap, text)


def find_body(msg: EmailMessage, subtype: str) -> Message | None:
    try:
        return msg.get_body(preferencelist=(subtype,))
    except Exception:
        return None


_NO_TEXT_MARKUP = re.compile(r"<!--.*?(?:-->|$)|<(head|style|script)\b[^>]*>.*?(?:</\1\s*>|$)", re.I | re.S)


def html_to_text(html: str) -> str:
    # html2text is pure Python, ~4 s per MB: an 8 MB HTML-only message took
    # 34 s of a worker (issue 17, point 15).  Only the start is converted
    # (of HTML that :func:`body_text` already cut to MAX_HTML_SCAN_CHARS).
    # Markup that never carries the question (the head with its style
    # sheets, scripts, comments -- Outlook's are most of its HTML) goes first,
    # with one C-speed regex pass each, so the cut keeps the text.
    html = _NO_TEXT_MARKUP.sub(" ", html)[:MAX_HTML_CHARS]
    converter = html2text.HTML2Text()
    converter.ignore_images = True
    converter.body_width = 0          # no hard wrapping: keeps codes and sentences whole
    converter.ignore_emphasis = True
    try:
        return converter.handle(html)
    except Exception:  # html2text chokes on rare malformed markup
        return re.sub(r"<[^>]+>", " ", html)


def _cut_history(lines: list[str]) -> list[str]:
    """``lines`` above the first line where a client's quoted history starts
    (:data:`QUOTE_HEADERS`); unchanged when nothing new is above it (a
    bottom-posted reply keeps its text for the reply library)."""
    for i, line in enumerate(lines):
        for name, pattern in QUOTE_HEADERS:
            if not pattern.match(line):
                continue
            if name == "Outlook header block" and not (i + 1 < len(lines) and _HEADER_FOLLOWERS.match(lines[i + 1])):
                continue
            if name == "Outlook Web separator" and not any(
                    re.match(r"^\s*\*{0,2}(from|von|de)\s*:", nxt, re.I) for nxt in lines[i + 1:i + 3]):
                continue
            if any(line.strip() for line in lines[:i]):
                return lines[:i]
            return lines
    return lines


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
    text = "\n".join(_cut_history(lines))
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
