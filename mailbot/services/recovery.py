"""Finding unfinished work after a crash, a restart or a lost queue message.

The database is the source of truth; queue messages are only pokes.  Each
rule below is a query for rows left in a non-final state longer than a
queued message would take, and the actor that moves such a row on.  The
reconciler (``workflows.reconciler``) runs them at start-up and periodically;
every actor is idempotent, so a poke for work already done is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import or_
from sqlmodel import select
from sqlmodel import Session

from mailbot.models import (
    Consultation,
    ConsultationState,
    InboundMessage,
    InboundStatus,
    OutboundMessage,
    OutboundState,
    utcnow,
)
from mailbot.services import Poke

Rule = Callable[[Session, timedelta], list[Poke]]


def _stale_inbound(session: Session, age: timedelta) -> list[Poke]:
    cutoff = utcnow() - age
    ids = session.exec(
        select(InboundMessage.id).where(
            InboundMessage.status == InboundStatus.RECEIVED, InboundMessage.received_at < cutoff
        )
    ).all()
    return [Poke("process_inbound", i) for i in ids]


def _stale_outbound(session: Session, age: timedelta) -> list[Poke]:
    now = utcnow()
    ids = session.exec(
        select(OutboundMessage.id).where(
            OutboundMessage.state == OutboundState.PENDING,
            OutboundMessage.created_at < now - age,
            or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now),
        )
    ).all()
    return [Poke("send_outbound", i) for i in ids]


# States in which a consultation waits for the machine, not for a person.
MACHINE_STATES = (
    ConsultationState.RECEIVED,
    ConsultationState.ACKNOWLEDGED,
    ConsultationState.DRAFTING,
    ConsultationState.APPROVED,
)


def _stale_consultations(session: Session, age: timedelta) -> list[Poke]:
    ids = session.exec(
        select(Consultation.id).where(
            Consultation.state.in_([s.value for s in MACHINE_STATES]),
            Consultation.state_changed_at < utcnow() - age,
        )
    ).all()
    return [Poke("advance_consultation", i) for i in ids]


RULES: list[Rule] = [_stale_inbound, _stale_outbound, _stale_consultations]


def unfinished(session: Session, age: timedelta) -> list[Poke]:
    """Every poke needed to finish work older than ``age``."""
    pokes: list[Poke] = []
    for rule in RULES:
        pokes.extend(rule(session, age))
    return pokes
