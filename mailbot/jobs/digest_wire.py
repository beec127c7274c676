"""A job digest's wire bytes, assembled for bulk mail.

``compose.build_bytes`` hands every header to the stdlib's header
registry, which parses and re-folds it: ~1.7 ms of the ~2 ms a 40 KB
digest took to assemble (profile of ``send_digests``, 2026-12-02), more
than matching and rendering it.  A digest's headers are few and known:
those that are the same for every digest of a service (From, List-Id,
List-Unsubscribe-Post, ...) go through the stdlib once per process and
are reused as bytes; those that differ per subscriber (To, Subject, Date,
Message-ID, List-Unsubscribe) are written directly when they are plain
short ASCII -- the stdlib would write the same bytes -- and through the
stdlib otherwise (a non-ASCII subject or address).

List-Unsubscribe is written as RFC 2369 wants it: ``<https://...>,`` and
``<mailto:...>`` folded between the two.  The stdlib cannot fold one token
longer than 78 characters (the signed link is ~100) and falls back to
RFC 2047 encoded words, which a mail client does not decode in that
header: the one-click unsubscribe would not be offered.
"""

from __future__ import annotations

import binascii
import re
import random
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache

from mailbot.mail.addresses import safe_addr_spec
from mailbot.mail.compose import ComposeError, Rendered, clean_header, new_message_id
from mailbot.mail.mailpolicy import LIST_URI, MAX_LINE, POLICY
from mailbot.models.base import utcnow

_WIRE = POLICY.clone(linesep="\r\n")
# What the stdlib writes unchanged: printable ASCII, no encoded-word start.
_PLAIN = re.compile(r"[\x20-\x7e]*")
_SIMPLE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


@dataclass(frozen=True)
class Wire:
    """One digest ready to store and send: what the outbound row records and the bytes."""

    to_addr: str
    from_addr: str
    subject: str
    message_id: str
    raw: bytes


def digest_wire(rendered: Rendered, *, to: str, from_addr: str, from_name: str, domain: str,
                list_unsubscribe: str, static: dict[str, str]) -> Wire:
    """The digest ``rendered`` for ``to``.  ``list_unsubscribe`` is the
    subscriber's ``"<url>, <mailto>"``; ``static`` the headers every digest
    carries alike (``List-Unsubscribe-Post``, ``List-Id``, ...)."""
    subject = clean_header(rendered.subject)
    message_id = new_message_id(domain)
    head = b"".join((
        _header_once("From", (from_name, from_addr)),
        _to(to), _plain_or_stdlib("Subject", subject),
        f"Date: {format_datetime(utcnow())}\r\nMessage-ID: {message_id}\r\n".encode(),
        _header_once("X-Loop", f"mailbot@{domain}"), _header_once("X-Mailbot-Kind", "digest"),
        _list_unsubscribe(list_unsubscribe),
        *(_header_once(name, value) for name, value in static.items()),
        b"MIME-Version: 1.0\r\n",
    ))
    text_part = _part("plain", rendered.text)
    if rendered.html is None:
        return Wire(to, from_addr, subject, message_id, head + text_part)
    html_part = _part("html", rendered.html)
    # The boundary's digits need not be unpredictable (os.urandom per email
    # was 3% of a worker's time): quoted-printable escapes "=", and a 7bit
    # part is checked not to contain it -- a new one is drawn if it does.
    while True:
        boundary = f"==========={random.getrandbits(96):024x}=="
        marker = boundary.encode()
        if marker not in text_part and marker not in html_part:
            break
    body = b"".join((f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n--{boundary}\r\n'.encode(),
                     text_part, f"\r\n--{boundary}\r\n".encode(), html_part,
                     f"\r\n--{boundary}--\r\n".encode()))
    return Wire(to, from_addr, subject, message_id, head + body)


# RFC 5322 2.1.1: at most 998 characters per line, CRLF excluded.
MAX_7BIT_LINE = 998
# HTML elements whose text is not decoded (raw text: a character reference
# there is not the character), and, to be safe, the escapable ones.
_RAW_TEXT = re.compile(r"<(style|script|xmp|iframe|noembed|noframes|noscript|plaintext|textarea|title)\b",
                       re.IGNORECASE)


def _part(subtype: str, text: str) -> bytes:
    """A text part: 7bit when it is 7-bit text (ASCII, no NUL or bare CR,
    lines of at most 998 characters) -- a digest of ASCII postings usually
    is, HTML after non-ASCII characters are written as character
    references -- quoted-printable otherwise.  Quoted-printable (every "="
    of the HTML's attributes escaped) was ~0.3 ms of CPU per part."""
    text = text.replace("\r\n", "\n")
    if subtype == "html" and not text.isascii() and not _RAW_TEXT.search(text):
        # css_inline writes the cards' &middot; and &mdash; back as characters;
        # as numeric references they read the same in every HTML parser
        # (not inside <style> or <script>, whose text is not decoded).
        data = text.encode("ascii", "xmlcharrefreplace")
    else:
        data = text.encode("utf-8")
    if data.isascii() and b"\r" not in data and b"\0" not in data \
            and max(map(len, data.split(b"\n"))) <= MAX_7BIT_LINE:
        return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: 7bit\r\n\r\n").encode() + data.replace(b"\n", b"\r\n")
    return _qp_part(subtype, data)


def _qp_part(subtype: str, data: bytes) -> bytes:
    encoded = binascii.b2a_qp(data, istext=True)
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + encoded.replace(b"\n", b"\r\n")


@lru_cache(maxsize=64)
def _header_once(name: str, value) -> bytes:
    """A header the same for every digest, folded by the stdlib once."""
    msg = EmailMessage(policy=POLICY)
    if name == "From":
        display_name, addr_spec = value
        msg[name] = Address(display_name=clean_header(display_name), addr_spec=addr_spec)
    else:
        msg[name] = clean_header(value)
    return _WIRE.fold_binary(name, msg[name])


def _stdlib(name: str, value) -> bytes:
    msg = EmailMessage(policy=POLICY)
    msg[name] = value
    return _WIRE.fold_binary(name, msg[name])


def _plain_or_stdlib(name: str, value: str) -> bytes:
    line = f"{name}: {value}"
    if len(line) <= 78 and _PLAIN.fullmatch(value) and "=?" not in value and value == value.strip() \
            and "  " not in value and value:
        return (line + "\r\n").encode("ascii")
    return _stdlib(name, value)


def _to(addr: str) -> bytes:
    """The recipient, refused as ``compose`` refuses it (``safe_addr_spec``)."""
    if not safe_addr_spec(addr or ""):
        raise ComposeError(f"no address we may write to: {addr!r}"[:300])
    if _SIMPLE_ADDRESS.fullmatch(addr) and len(addr) <= 70:
        return f"To: {addr}\r\n".encode("ascii")
    try:
        return _stdlib("To", Address(addr_spec=addr))
    except (ValueError, IndexError) as exc:
        raise ComposeError(f"the recipient {addr!r} cannot be written: {exc}"[:300]) from exc


def _list_unsubscribe(value: str) -> bytes:
    """``<url>, <mailto>`` folded after the comma; URIs are ASCII without
    spaces (RFC 2369), so nothing needs encoding.  Anything else goes to
    the stdlib as before."""
    uris = [part.strip() for part in value.split(",")]
    if uris and all(LIST_URI.fullmatch(uri) and len(uri) < MAX_LINE - 20 for uri in uris):
        return ("List-Unsubscribe: " + ",\r\n ".join(uris) + "\r\n").encode("ascii")
    return _stdlib("List-Unsubscribe", clean_header(value))
