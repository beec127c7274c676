"""Threads: which consultation a reply belongs to, and opening new ones.

A reply is matched, most reliable first, by

1. the Message-IDs it answers (``In-Reply-To``, then ``References`` newest
   first) against the mail we sent for a consultation, the mail the asker
   sent before, and each consultation's root Message-ID;
2. our reference token ``[#Q-1042]`` in the subject -- but only when the
   sender is the asker of that consultation, so a stranger cannot attach
   text to someone else's question by typing a number.
"""

from __future__ import annotations

from sqlmodel import Session, select

from mailbot.mail.parse import ParsedMessage
from mailbot.models import (
    Consultation,
    ConsultationState,
    InboundMessage,
    OutboundMessage,
    utcnow,
)

MAX_THREAD_IDS = 500


def find_consultation(session: Session, parsed: ParsedMessage) -> Consultation | None:
    """The consultation ``parsed`` replies to, or ``None``."""
    for message_id in parsed.thread_ids[:50]:
        cid = _consultation_for_message_id(session, message_id)
        if cid is not None:
            found = session.get(Consultation, cid)
            if found is not None:
                return found
    reference = parsed.reference
    if reference is not None:
        found = session.get(Consultation, reference)
        if found is not None and found.asker_email.lower() in {
            a.lower() for a in (parsed.from_addr, parsed.reply_to) if a
        }:
            return found
    return None


def _consultation_for_message_id(session: Session, message_id: str) -> int | None:
    cid = session.exec(
        select(OutboundMessage.consultation_id).where(
            OutboundMessage.message_id == message_id, OutboundMessage.consultation_id.is_not(None))
    ).first()
    if cid is not None:
        return cid
    cid = session.exec(
        select(InboundMessage.consultation_id).where(
            InboundMessage.message_id == message_id, InboundMessage.consultation_id.is_not(None))
        .order_by(InboundMessage.id)
    ).first()
    if cid is not None:
        return cid
    return session.exec(
        select(Consultation.id).where(Consultation.root_message_id == message_id)
    ).first()


def open_consultation(session: Session, inbound: InboundMessage, parsed: ParsedMessage) -> Consultation:
    """A new consultation in state ``received`` for ``inbound`` (caller's transaction)."""
    now = utcnow()
    consultation = Consultation(
        subject=parsed.subject[:2000], asker_email=parsed.reply_address[:512],
        asker_name=parsed.from_name[:512], state=ConsultationState.RECEIVED,
        created_at=now, updated_at=now, state_changed_at=now, waiting_since=now,
        last_inbound_id=inbound.id, root_message_id=parsed.message_id[:998],
        thread_message_ids=[parsed.message_id],
    )
    session.add(consultation)
    session.flush()
    return consultation


def attach(session: Session, consultation_id: int, inbound: InboundMessage, parsed: ParsedMessage) -> None:
    """Record ``inbound`` as the latest message of the consultation's thread.

    The row is locked (PostgreSQL ``FOR UPDATE``; SQLite write transactions
    are already exclusive) so two replies arriving together both land in
    ``thread_message_ids``."""
    consultation = session.exec(
        select(Consultation).where(Consultation.id == consultation_id).with_for_update()
    ).one()
    ids = list(consultation.thread_message_ids or [])
    if parsed.message_id not in ids:
        ids.append(parsed.message_id)
    consultation.thread_message_ids = ids[-MAX_THREAD_IDS:]
    if consultation.last_inbound_id is None or consultation.last_inbound_id < (inbound.id or 0):
        consultation.last_inbound_id = inbound.id
    consultation.updated_at = utcnow()
    session.add(consultation)
