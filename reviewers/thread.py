"""Loading one consultation with everything its detail page shows.

A fixed number of queries whatever the thread's length: the consultation,
its inbound messages (without the raw bytes), attachment metadata (without
the data), outbound replies, drafts, audit events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from mailbot.models import (
    Attachment,
    AuditEvent,
    Consultation,
    Draft,
    InboundMessage,
    OutboundMessage,
    Reviewer,
)
from mailbot.services import draft_versions
from reviewers import sanitize


@dataclass
class Entry:
    """One message of the thread, in or out."""

    direction: str          # "in" | "out"
    at: Any
    who: str
    subject: str
    text: str
    html: str = ""          # sanitized
    blocked_images: int = 0
    kind: str = ""
    attachments: list[Any] = field(default_factory=list)
    inbound_id: int | None = None
    codes: list[str] = field(default_factory=list)


@dataclass
class Thread:
    consultation: Consultation
    claimed_by: Reviewer | None
    approved_by: Reviewer | None
    entries: list[Entry]
    drafts: list[Draft]
    audit: list[AuditEvent]

    @property
    def draft(self) -> Draft | None:
        """The draft in the editor: the reviewer's saved text wins over later machine drafts."""
        return draft_versions.current(self.drafts)

    @property
    def suggestions(self) -> list[Draft]:
        """Machine drafts made after the reviewer's saved text (e.g. after a follow-up)."""
        return draft_versions.suggestions(self.drafts)

    @property
    def new_material(self) -> list[Entry]:
        """The asker's messages that arrived after the reviewer's saved text."""
        shown = self.draft
        if shown is None or shown.source != "reviewer":
            return []
        return [e for e in self.entries if e.direction == "in" and e.at > shown.created_at]


def _text_of(raw: bytes) -> str:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    part = message.get_body(preferencelist=("plain",))
    try:
        return part.get_content() if part is not None else ""
    except (LookupError, ValueError):
        return ""


def load(session: Session, cid: int, *, audit_limit: int | None = 50) -> Thread | None:
    consultation = session.get(Consultation, cid)
    if consultation is None:
        return None
    reviewers = {}
    wanted = {i for i in (consultation.claimed_by_id, consultation.approved_by_id) if i}
    if wanted:
        reviewers = {r.id: r for r in session.exec(select(Reviewer).where(Reviewer.id.in_(wanted))).all()}
    condition = InboundMessage.consultation_id == cid
    if consultation.last_inbound_id:
        condition = or_(condition, InboundMessage.id == consultation.last_inbound_id)
    inbound = session.exec(select(InboundMessage).options(defer(InboundMessage.raw)).where(condition)
                           .order_by(InboundMessage.received_at, InboundMessage.id)).all()
    ids = [m.id for m in inbound]
    attachments: dict[int, list[Any]] = {}
    if ids:
        for row in session.exec(select(Attachment.id, Attachment.inbound_id, Attachment.filename,
                                       Attachment.content_type, Attachment.size, Attachment.truncated)
                                .where(Attachment.inbound_id.in_(ids)).order_by(Attachment.id)).all():
            attachments.setdefault(row.inbound_id, []).append(row)
    entries = []
    for m in inbound:
        cleaned = sanitize.clean(m.html) if m.html else None
        entries.append(Entry(
            direction="in", at=m.received_at, who=f"{m.from_name} <{m.from_addr}>" if m.from_name else m.from_addr,
            subject=m.subject, text=m.full_text or m.text, html=cleaned.html if cleaned else "",
            blocked_images=cleaned.blocked_images if cleaned else 0, attachments=attachments.get(m.id, []),
            inbound_id=m.id, codes=list(m.codes or [])))
    for o in session.exec(select(OutboundMessage).where(OutboundMessage.consultation_id == cid)
                          .order_by(OutboundMessage.created_at, OutboundMessage.id)).all():
        entries.append(Entry(direction="out", at=o.created_at, who=o.to_addr, subject=o.subject,
                             text=_text_of(o.raw), kind=f"{o.kind} ({o.state})"))
    entries.sort(key=lambda e: e.at)
    drafts = list(session.exec(select(Draft).where(Draft.consultation_id == cid)
                               .order_by(Draft.created_at.desc(), Draft.id.desc()).limit(20)).all())
    query = (select(AuditEvent).where(AuditEvent.consultation_id == cid)
             .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()))
    if audit_limit:
        query = query.limit(audit_limit)
    audit = list(session.exec(query).all())
    return Thread(consultation=consultation, claimed_by=reviewers.get(consultation.claimed_by_id),
                  approved_by=reviewers.get(consultation.approved_by_id), entries=entries, drafts=drafts,
                  audit=audit)
