"""Raw bytes -> :class:`ParsedMessage`: who wrote, what they wrote, how it threads.

The bytes go straight to ``email`` with ``policy.default`` (never decoded
first: the MIME structure says which charset each part uses).  What people
actually send is messy, so every step degrades instead of failing: unknown
charsets fall back to UTF-8 then Windows-1252 with replacement characters,
raw 8-bit headers are read as UTF-8 or Windows-1252, HTML-only mail is turned
into text with html2text.  Only a message with no usable sender or no header
at all raises :class:`ParseError` -- the caller quarantines it with the reason.

Getting text out of the parts (charsets, HTML, quotes and signatures) is
``mail.text``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.headerregistry import UnstructuredHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

from mailbot.mail.addresses import safe_addr_spec
from mailbot.mail.limits import MAX_PARTS, MAX_TEXT_CHARS
from mailbot.mail.mailpolicy import POLICY, CachedRegistry
from mailbot.mail.text import body_text, decode_bytes, find_body, new_text

REFERENCE_TOKEN = re.compile(r"\[#\s*Q-(\d{1,12})\s*\]", re.I)
# MIME parts (multiparts and forwarded messages) nested deeper than this are
# refused: real mail stays far below it, and walking or re-serialising a
# deeper tree recurses past Python's limit (a forwarded-message chain of ~300
# crashed the parser with RecursionError instead of a reason).
MAX_DEPTH = 64
_MSGID = re.compile(r"<[^<>\s]+>")
_ANGLE_ADDR = re.compile(r"<\s*([^<>\s@]+@[^<>\s@]+)\s*>")
_REGISTRY = CachedRegistry()
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")
_MAX_ADDRESSES = 100
_MAX_MAILBOX_HEADER = 2_000      # characters: From / Reply-To / Sender
_MAX_LIST_HEADER = 8_000         # characters of To / Cc read (well over the 100 addresses kept)


class ParseError(Exception):
    """The message cannot be handled at all; ``str(exc)`` is the reason."""


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    data: bytes | None          # None when over the size cap (listed, not kept)
    truncated: bool = False


@dataclass
class ParsedMessage:
    from_addr: str
    from_name: str
    reply_to: str
    envelope_from: str
    subject: str
    text: str                    # the new text: quotes, signature, our marker removed
    full_text: str               # the whole text body
    html: str                    # the original HTML part ("" when none)
    message_id: str
    message_id_generated: bool
    in_reply_to: str
    references: list[str]
    to: list[str]
    cc: list[str]
    attachments: list[ParsedAttachment] = field(default_factory=list)
    attachments_dropped: int = 0  # beyond max_attachments
    codes: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    message: EmailMessage | None = field(default=None, repr=False)

    @property
    def reply_address(self) -> str:
        """Where an answer goes: Reply-To, else From, else the envelope sender."""
        return self.reply_to or self.from_addr or self.envelope_from.strip("<>")

    @property
    def null_sender(self) -> bool:
        return self.envelope_from == "<>"

    @property
    def reference(self) -> int | None:
        """The consultation id in a ``[#Q-1042]`` token in the subject."""
        match = REFERENCE_TOKEN.search(self.subject)
        return int(match.group(1)) if match else None

    @property
    def thread_ids(self) -> list[str]:
        """In-Reply-To then References (newest first): the ids to thread on."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        ids += [r for r in reversed(self.references) if r not in ids]
        return ids


def parse(raw: bytes, *, envelope_from: str = "", domain: str = "mailbot.localhost",
          max_attachment_size: int = 5 * 1024 * 1024, max_attachments: int = 20,
          to_bounce_address: bool = False) -> ParsedMessage:
    """Parse one message.  ``domain`` is used for a generated Message-ID.

    A message with no sender we could answer is refused (:class:`ParseError`)
    -- unless it is a bounce: the null envelope sender ``<>`` or delivery to
    our bounce address (``to_bounce_address``), where no sender is normal."""
    if not raw or not raw.strip():
        raise ParseError("empty message")
    try:
        msg = BytesParser(policy=POLICY).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; this is a bug-shaped input
        raise ParseError(f"the MIME structure cannot be read: {exc!r}") from exc
    if not msg.keys():
        raise ParseError("no header fields: this is not an email message")
    depth, parts = _depth(msg)
    if depth > MAX_DEPTH:
        raise ParseError(f"MIME parts are nested more than {MAX_DEPTH} levels deep")
    if parts > MAX_PARTS:
        raise ParseError(f"more than {MAX_PARTS} MIME parts")
    try:
        return _read(msg, raw, envelope_from, domain, max_attachment_size, max_attachments, to_bounce_address)
    except ParseError:
        raise
    except Exception as exc:
        # The stdlib's header parsers raise on some hostile values (e.g.
        # IndexError for 'Content-Disposition: attachment; filename*'): the
        # message is quarantined with the reason instead of crashing the worker.
        raise ParseError(f"a header or part cannot be read: {exc!r}"[:500]) from exc


def _read(msg: EmailMessage, raw: bytes, envelope_from: str, domain: str,
          max_attachment_size: int, max_attachments: int, to_bounce_address: bool = False) -> ParsedMessage:
    from_name, from_addr = _address(msg, "From")
    reply_to = _address(msg, "Reply-To")[1]
    # "<>" is the null sender (bounces); "" means the envelope is unknown (IMAP).
    envelope_from = envelope_address(envelope_from)
    bounce_like = envelope_from == "<>" or to_bounce_address
    if not (from_addr or reply_to or envelope_from.strip("<>") or bounce_like):
        raise ParseError("no sender: From, Reply-To and the envelope sender are all missing or unreadable")

    message_id = _first_id(header(msg, "Message-ID"))
    generated = not message_id
    if generated:
        # Stable for the same bytes, so a replay or a second copy threads the same way.
        digest = hashlib.sha256(raw).hexdigest()[:24]
        message_id = f"<generated.{digest}@{domain}>"

    full_text, html = body_text(msg)
    # Everything downstream (quote stripping, code extraction, commands,
    # redaction, drafting) is at least linear in the text and some regexes
    # hold the GIL for a whole scan: an 8 MB question starved the listener
    # (issue 17, point 15).  Questions are short; the rest is kept in raw.
    if len(full_text) > MAX_TEXT_CHARS:
        full_text = full_text[:MAX_TEXT_CHARS] + "\n[... text cut at %d characters]" % MAX_TEXT_CHARS
    parsed = ParsedMessage(
        from_addr=from_addr, from_name=from_name, reply_to=reply_to, envelope_from=envelope_from,
        subject=header(msg, "Subject"), text=new_text(full_text), full_text=full_text, html=html,
        message_id=message_id, message_id_generated=generated,
        in_reply_to=_first_id(header(msg, "In-Reply-To")),
        references=_MSGID.findall(header(msg, "References"))[-50:],
        to=_addresses(msg, "To"), cc=_addresses(msg, "Cc"),
        defects=[type(d).__name__ for d in msg.defects][:20], message=msg,
    )
    _collect_attachments(msg, parsed, max_attachment_size, max_attachments)
    parsed.codes = _codes(parsed.subject, parsed.text)
    return parsed


# -- headers ---------------------------------------------------------------

def header(msg: Message, name: str) -> str:
    """A header as clean text ("" when absent or unreadable).

    Raw 8-bit bytes in headers (no encoded words) arrive as surrogate escapes,
    which ``policy.default`` would turn into U+FFFD; they are read here as
    UTF-8 when valid, else Windows-1252.  Folding whitespace becomes one space."""
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return ""
    # The rules ask for the same header many times (Subject: 12 times per
    # message) and ``policy.default`` parses it afresh each time -- 0.1 s a
    # time for a 32 KiB folded Subject (issue 17, point 15).  Keyed by the raw
    # value, so a changed header is parsed again.
    cache = msg.__dict__.setdefault("_mailbot_header_text", {})
    key = (name.lower(), str(raw))
    if key not in cache:
        cache[key] = _header_text(msg, name, raw)
    return cache[key]


def _header_text(msg: Message, name: str, raw) -> str:
    value = str(raw)
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        text = decode_bytes(value.encode("ascii", "surrogateescape"), "")
        decoded = _decode_words(text)
        text = text if decoded is None else decoded
    elif _unstructured(name):
        # Subject and the like: only encoded words to decode.  ``policy.default``
        # tokenises them character by character (0.1-0.5 s for a 32 KiB folded
        # Subject, holding the GIL the listener needs); ``decode_header`` is one
        # regex split.  A value it cannot read takes the policy's path.
        text = _decode_words(value)
        if text is None:
            text = _policy_text(msg, name, raw)
    else:
        text = _policy_text(msg, name, raw)
    return " ".join(text.replace("\x00", "").split())


def _decode_words(text: str) -> str | None:
    """``text`` with its RFC 2047 encoded words decoded; ``None`` when they cannot be read."""
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return None


def _unstructured(name: str) -> bool:
    return issubclass(POLICY.header_factory[name], UnstructuredHeader)


def _policy_text(msg: Message, name: str, raw) -> str:
    try:
        return str(msg.get(name))
    except Exception:  # a header the policy cannot parse: keep the raw text
        return str(raw)


def _address(msg: Message, name: str) -> tuple[str, str]:
    """``(display name, addr-spec)`` of the one mailbox in ``name`` (From,
    Reply-To), or ``("", "")`` when there is none we may write to.

    The header is parsed as an address list (``email.headerregistry``), never
    by picking the first token with an "@": in ``From: boss@corp.example
    <attacker@evil.example>`` the address is the angle-addr, and the unquoted
    "boss@corp.example" is a (malformed) display name.  A display name that
    looks like an address is dropped, so no one is shown boss@ for attacker@."""
    found = mailboxes(msg, name)
    return found[0] if found else ("", "")


def mailboxes(msg: Message, name: str) -> list[tuple[str, str]]:
    """Every ``(display name, addr-spec)`` in header ``name`` that is a safe,
    deliverable address (see :func:`mailbot.mail.addresses.safe_addr_spec`)."""
    text = _raw_header_text(msg, name)
    # The parser and the routing guards ask for From three times per message
    # (~0.5 ms each through the header registry, issue 16); kept per message,
    # keyed by the text, so a changed header is read again.
    cache = msg.__dict__.setdefault("_mailbot_mailboxes", {})
    key = (name.lower(), text)
    if key not in cache:
        cache[key] = _mailboxes(name, text)
    return list(cache[key])


def _mailboxes(name: str, text: str) -> list[tuple[str, str]]:
    single = name.lower() in ("from", "reply-to", "sender")
    if not text or (single and len(text) > _MAX_MAILBOX_HEADER):
        return []     # no real sender header is that long; the stdlib's parser is superlinear in it
    if len(text) > _MAX_LIST_HEADER:
        text = text[:text.rfind(",", 0, _MAX_LIST_HEADER) + 1 or _MAX_LIST_HEADER].rstrip(",")
    try:
        parsed = _REGISTRY(name, text)
        found = [(a.display_name or "", a.addr_spec or "") for a in parsed.addresses]
        defective = bool(parsed.defects)
    except Exception:  # e.g. an encoded word that decodes to CR/LF inside an address
        found, defective = [], True
    angles = _ANGLE_ADDR.findall(text)
    if defective and angles and name.lower() in ("from", "reply-to", "sender"):
        # "boss@corp.example <attacker@evil.example>": the registry takes the
        # first bare address; a mail client delivers to the angle-addr.  Two
        # angle-addrs in one mailbox header is ambiguous: no address at all.
        if len(angles) != 1:
            return []
        found = [(text[:text.index("<")].strip().strip('"'), angles[0])]
    out = []
    for display, addr in found[:_MAX_ADDRESSES]:
        addr = addr.strip()
        if not safe_addr_spec(addr):
            continue
        # Encoded words in a name can decode to anything: no control
        # characters (NUL breaks PostgreSQL, CR/LF headers), no lone surrogates.
        display = _CONTROL.sub(" ", str(display)).encode("utf-8", "replace").decode("utf-8")
        display = " ".join(display.split())
        if "@" in display or "=?" in display:
            display = ""   # a name that looks like an address (or is undecodable) misleads
        out.append((display, addr.lower() if _ascii(addr) else addr))
    return out


def _raw_header_text(msg: Message, name: str) -> str:
    """The header's unfolded text with encoded words left encoded (the
    registry decodes them where RFC 2047 allows: in a display name, never in
    an address); raw 8-bit bytes read as UTF-8 or Windows-1252."""
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return ""
    raw = str(raw)
    if any("\udc80" <= ch <= "\udcff" for ch in raw):
        raw = decode_bytes(raw.encode("ascii", "surrogateescape"), "")
    return " ".join(raw.replace("\x00", "").split())


def _addresses(msg: Message, name: str) -> list[str]:
    """The safe addr-specs in an address-list header (To, Cc).  They only
    tell which of our addresses a message was sent to, so the stdlib's
    linear ``getaddresses`` is enough: the header registry took 0.25 s for
    495 addresses on the routing thread (issue 17, point 15).  Senders
    (From, Reply-To, Sender) still go through :func:`mailboxes`."""
    text = _raw_header_text(msg, name)
    if not text:
        return []
    out = []
    for _, addr in getaddresses([text])[:_MAX_ADDRESSES]:
        addr = addr.strip()
        if safe_addr_spec(addr):
            out.append(addr.lower() if _ascii(addr) else addr)
    return out


def envelope_address(envelope_from: str) -> str:
    """The envelope sender as we may use it: ``"<>"`` (null sender), a safe
    addr-spec, or ``""`` (unknown, or an encoded word / CR/LF that must never
    become a recipient)."""
    value = (envelope_from or "").strip()
    if value == "<>":
        return value
    value = value.strip("<>")
    return value if safe_addr_spec(value) else ""


def _ascii(text: str) -> bool:
    return all(ord(c) < 128 for c in text)


def _first_id(value: str) -> str:
    match = _MSGID.search(value or "")
    if match:
        return match.group(0)
    value = (value or "").strip()
    # Some mailers omit the angle brackets; keep a bare id-shaped token.
    return f"<{value}>" if value and " " not in value and "@" in value else ""


# -- attachments -----------------------------------------------------------

def _collect_attachments(msg: EmailMessage, parsed: ParsedMessage, max_size: int, max_count: int) -> None:
    body_parts = {id(p) for p in (find_body(msg, "plain"), find_body(msg, "html")) if p is not None}
    for part in _leaves(msg):
        if id(part) in body_parts:
            continue
        ctype = part.get_content_type()
        filename = _filename(part)
        is_attachment = _disposition(part) == "attachment" or bool(filename) \
            or not ctype.startswith(("text/plain", "text/html", "multipart/"))
        if not is_attachment:
            continue
        if len(parsed.attachments) >= max_count:
            parsed.attachments_dropped += 1
            continue
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            data = inner.as_bytes(policy=POLICY) if isinstance(inner, Message) else b""
        else:
            try:
                data = part.get_payload(decode=True) or b""
            except Exception:
                data = b""
        keep = len(data) <= max_size
        parsed.attachments.append(ParsedAttachment(
            filename=filename[:500] or _default_name(ctype), content_type=ctype[:255], size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), data=data if keep else None, truncated=not keep,
        ))


def _depth(msg: Message) -> tuple[int, int]:
    """How deep the part tree goes and how many parts it has (iteratively:
    the tree may be hostile); both stop counting just past their bound."""
    deepest, count, stack = 0, 0, [(msg, 1)]
    while stack and deepest <= MAX_DEPTH and count <= MAX_PARTS:
        part, level = stack.pop()
        deepest = max(deepest, level)
        count += 1
        if part.is_multipart():  # a leaf's payload is never decoded here (its charset may be hostile)
            stack.extend((sub, level + 1) for sub in part.get_payload() if isinstance(sub, Message))
    return deepest, count


def _leaves(part: Message):
    """Leaf parts, treating a forwarded message (message/rfc822) as one leaf."""
    if part.is_multipart() and part.get_content_type() != "message/rfc822":
        for sub in part.get_payload():
            yield from _leaves(sub)
    else:
        yield part


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # e.g. 'attachment; filename*' makes the stdlib raise IndexError
        return "attachment"


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    # A file name must never carry a path (it is shown and may be saved).
    return re.sub(r"[\x00-\x1f/\\]", "_", str(name)).strip()


def _default_name(ctype: str) -> str:
    return "forwarded-message.eml" if ctype == "message/rfc822" else "attachment"


# -- codes -----------------------------------------------------------------

def _codes(subject: str, text: str) -> list[str]:
    """Codes mentioned (subject first), canonical, in order, no duplicates."""
    from mailbot.codes.extract import find_codes

    seen: list[str] = []
    # Our own reference token ("[#Q-1042]") is not a HCPCS code.
    for code in find_codes(REFERENCE_TOKEN.sub(" ", subject)) + find_codes(text):
        if code not in seen:
            seen.append(code)
    return seen[:200]
