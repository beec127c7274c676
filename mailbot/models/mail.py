"""Mail records: what came in, what goes out, and what could not be handled.

The raw bytes of every inbound message are stored in the row itself before
the SMTP listener answers 250 (or the IMAP poller moves the message), so the
database alone is enough to replay anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from mailbot.models.base import blob_field, json_field, utcnow


class InboundStatus(StrEnum):
    RECEIVED = "received"        # stored, not yet routed
    PROCESSED = "processed"      # routed; see ``route`` and ``action``
    DROPPED = "dropped"          # deliberately ignored (duplicate, auto-reply, bounce)
    QUARANTINED = "quarantined"  # could not be handled; see QuarantineItem


class InboundMessage(SQLModel, table=True):
    __tablename__ = "inbound_message"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, index=True)
    source: str = Field(max_length=16)                 # smtp | lmtp | imap | cli | replay
    envelope_from: str = Field(default="", max_length=512)
    envelope_to: list[str] = json_field()
    peer: str = Field(default="", max_length=255)      # client address or IMAP folder/uid
    raw: bytes = blob_field()
    raw_sha256: str = Field(max_length=64, index=True)
    size: int = 0
    # filled by parsing/routing
    message_id: str = Field(default="", max_length=998, index=True)
    in_reply_to: str = Field(default="", max_length=998)
    references: list[str] = json_field()
    from_addr: str = Field(default="", max_length=512, index=True)
    from_name: str = Field(default="", max_length=512)
    reply_to: str = Field(default="", max_length=512)
    subject: str = Field(default="", max_length=2000)
    text: str = ""                                      # the new text, quotes stripped
    full_text: str = ""                                 # the whole text body
    html: str = ""                                      # the original HTML part, never shown unsanitized
    codes: list[str] = json_field()                     # codes mentioned, as typed
    status: str = Field(default=InboundStatus.RECEIVED, max_length=16, index=True)
    action: str = Field(default="", max_length=32)      # consult | command | bounce | ...
    route: list[dict[str, Any]] = json_field()          # rules that fired, in order
    auto_reply_ok: bool = True                          # False: no automatic answer (cap, auto-submitted ...)
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id", index=True)
    error: str = ""
    attempts: int = 0
    processed_at: datetime | None = None


@dataclass(slots=True)
class InboundRow:
    """The columns of one ``inbound_message`` row, as a plain object.

    Routing and answering read a row once and pass this copy along instead
    of reading it again (issue 16); building the SQLModel object costs ~0.6 ms
    of CPU, more than the statement that read the row.  Its fields are the
    table's columns (``tests/foundation/test_db.py`` checks that)."""

    id: int
    received_at: datetime
    source: str
    envelope_from: str = ""
    envelope_to: list[str] = dc_field(default_factory=list)
    peer: str = ""
    raw: bytes = b""
    raw_sha256: str = ""
    size: int = 0
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = dc_field(default_factory=list)
    from_addr: str = ""
    from_name: str = ""
    reply_to: str = ""
    subject: str = ""
    text: str = ""
    full_text: str = ""
    html: str = ""
    codes: list[str] = dc_field(default_factory=list)
    status: str = InboundStatus.RECEIVED
    action: str = ""
    route: list[dict[str, Any]] = dc_field(default_factory=list)
    auto_reply_ok: bool = True
    consultation_id: int | None = None
    error: str = ""
    attempts: int = 0
    processed_at: datetime | None = None

    @classmethod
    def from_mapping(cls, values) -> InboundRow:
        """From a result row's ``._mapping`` (JSON columns may be NULL)."""
        row = cls(**values)
        row.envelope_to = list(row.envelope_to or [])
        row.references = list(row.references or [])
        row.codes = list(row.codes or [])
        row.route = list(row.route or [])
        return row


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    inbound_id: int = Field(foreign_key="inbound_message.id", index=True)
    filename: str = Field(default="", max_length=512)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: int = 0
    sha256: str = Field(default="", max_length=64)
    data: bytes | None = blob_field(nullable=True)      # None when over the size cap
    truncated: bool = False


class OutboundState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"          # permanent failure, visible to reviewers


class OutboundMessage(SQLModel, table=True):
    """One email we send.  The Message-ID is chosen and stored before the
    first attempt; ``state`` moves pending -> sent with a conditional update,
    so a retried task never sends twice."""

    __tablename__ = "outbound_message"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, index=True)       # ack | answer | needs_info | lookup | help | digest | ...
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id", index=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound_message.id", index=True)
    to_addr: str = Field(max_length=512, index=True)
    from_addr: str = Field(default="", max_length=512)
    subject: str = Field(default="", max_length=2000)
    message_id: str = Field(max_length=998, unique=True)
    raw: bytes = blob_field()
    state: str = Field(default=OutboundState.PENDING, max_length=16, index=True)
    attempts: int = 0
    last_error: str = ""
    transport: str = Field(default="", max_length=16)  # relay | outbox
    created_at: datetime = Field(default_factory=utcnow, index=True)
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None


class SenderDay(SQLModel, table=True):
    """Automatic replies sent to one address on one day (the daily cap)."""

    __tablename__ = "sender_day"
    __table_args__ = (UniqueConstraint("address", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=512, index=True)
    day: date
    replies: int = 0
    notice_sent: bool = False


class BounceEvent(SQLModel, table=True):
    """A delivery status notification about mail we sent."""

    __tablename__ = "bounce_event"

    id: int | None = Field(default=None, primary_key=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound_message.id")
    # The message of ours that bounced (VERP return path or the returned
    # Message-ID); a DSN that names none of our mail is not recorded at all.
    outbound_id: int | None = Field(default=None, foreign_key="outbound_message.id", index=True)
    recipient: str = Field(max_length=512, index=True)
    action: str = Field(default="failed", max_length=32)   # failed | delayed | ...
    status: str = Field(default="", max_length=32)          # e.g. 5.1.1
    diagnostic: str = ""
    permanent: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class QuarantineItem(SQLModel, table=True):
    """Something that could not be handled, kept with its reason for a human.

    ``kind`` says what ``ref_id`` points at (inbound, outbound, consultation,
    job ...); replaying re-enqueues it."""

    __tablename__ = "quarantine_item"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, index=True)
    ref_id: int | None = Field(default=None, index=True)
    stage: str = Field(default="", max_length=64)
    reason: str = Field(max_length=2000)
    detail: str = ""
    created_at: datetime = Field(default_factory=utcnow, index=True)
    resolved_at: datetime | None = None
    resolved_by: str = Field(default="", max_length=512)
