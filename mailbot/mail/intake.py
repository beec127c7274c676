"""The one way a message enters the system: store it durably, return its id.

Both the SMTP listener and the IMAP poller call :func:`accept`; only after it
returns does the listener answer 250 (or the poller move the message).  The
row holds the raw bytes and the envelope, so nothing else is needed to
process -- or replay -- the message later.  Intake does no routing:
deduplication and every other decision belong to ``mail.routing``, which runs
in a worker, not while a sending server waits.

The Message-ID is read from the header block (cheap, never fails) so the
poller and the duplicate rule can find earlier copies by index.
"""

from __future__ import annotations

import hashlib
import re

from mailbot.db import Database
from mailbot.models import InboundMessage, InboundStatus

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:\s*(<[^<>\s]{1,990}>)", re.I | re.M)


def accept(db: Database, raw: bytes, *, source: str, envelope_from: str, envelope_to: list[str],
           peer: str = "") -> int:
    """Store ``raw`` with its envelope in its own committed transaction.

    Returns the new ``InboundMessage`` id.  Raises whatever the database
    raises (the caller answers "try again later"); nothing is half-stored
    because the row is written in one transaction."""
    row = InboundMessage(
        source=source[:16], envelope_from=(envelope_from or "")[:512],
        envelope_to=[t[:512] for t in envelope_to][:100], peer=(peer or "")[:255],
        raw=raw, raw_sha256=hashlib.sha256(raw).hexdigest(), size=len(raw),
        message_id=header_message_id(raw), status=InboundStatus.RECEIVED,
    )
    with db.session() as session:
        session.add(row)
        session.flush()
        inbound_id = row.id
    return inbound_id


def header_message_id(raw: bytes) -> str:
    """The Message-ID from the header block of ``raw``, or "" (no full parse)."""
    end = _HEADER_END.search(raw, 0, 256 * 1024)
    head = raw[: end.start() if end else 256 * 1024]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode("ascii", "replace") if match else ""
