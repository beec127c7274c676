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
    text_part = _qp_part("plain", rendered.text)
    if rendered.html is None:
        return Wire(to, from_addr, subject, message_id, head + text_part)
    # "=" is escaped in quoted-printable, so no part can contain the boundary
    # whatever its digits: they need not be unpredictable (os.urandom per
    # email was 3% of a worker's time).
    boundary = f"==========={random.getrandbits(96):024x}=="
    body = b"".join((f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n--{boundary}\r\n'.encode(),
                     text_part, f"\r\n--{boundary}\r\n".encode(), _qp_part("html", rendered.html),
                     f"\r\n--{boundary}--\r\n".encode()))
    return Wire(to, from_addr, subject, message_id, head + body)


def _qp_part(subtype: str, text: str) -> bytes:
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
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
