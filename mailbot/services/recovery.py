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

from mailbot.commands.runner import unanswered_commands
from mailbot.jobs.schedule import stale_runs
from mailbot.models import (
    AuditEvent,
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


def _unhandled_followups(session: Session, age: timedelta) -> list[Poke]:
    """Follow-ups routed more than ``age`` ago (within a week) whose
    consultation was never reopened for them."""
    now = utcnow()
    rows = session.exec(select(InboundMessage.id, InboundMessage.consultation_id).where(
        InboundMessage.status == InboundStatus.PROCESSED, InboundMessage.action == "followup",
        InboundMessage.consultation_id.is_not(None),
        InboundMessage.received_at < now - age, InboundMessage.received_at > now - timedelta(days=7))).all()
    if not rows:
        return []
    events = session.exec(select(AuditEvent.detail).where(
        AuditEvent.action == "followup", AuditEvent.consultation_id.in_({cid for _, cid in rows}))).all()
    handled = {(d or {}).get("inbound_id") for d in events}
    return [Poke("consultation_followup", iid) for iid, _ in rows if iid not in handled]


# Every rule, as data.  Rules that belong to one part of the service live
# next to the code whose state they read; they are listed here so a reader
# sees the whole recovery story in one place.
RULES: tuple[Rule, ...] = (
    _stale_inbound,
    _stale_outbound,
    _stale_consultations,
    _unhandled_followups,
    unanswered_commands,
    stale_runs,
)


def unfinished(session: Session, age: timedelta) -> list[Poke]:
    """Every poke needed to finish work older than ``age``."""
    pokes: list[Poke] = []
    for rule in RULES:
        pokes.extend(rule(session, age))
    return pokes
