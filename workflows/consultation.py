"""Consultation actors: thin, taking ids, safe to run twice.

``advance_consultation(cid)`` moves a consultation one machine step on
(acknowledge, draft, mark sent); ``consultation_followup(inbound_id)``
reopens a consultation when the asker writes again.  The work and its
conditional state changes live in :mod:`mailbot.services.consultations`.

An approved answer still waiting for delivery is "look again later, not an
error": the actor re-sends itself with a delay until delivery is final.
The recovery rule registered here lets the reconciler finish follow-ups
whose poke was lost.
"""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from sqlmodel import Session, select

from mailbot.context import current
from mailbot.models import AuditEvent, InboundMessage, InboundStatus, utcnow
from mailbot.services import Poke, consultations, recovery
from workflows.actors import RETRY, dispatch

# Drafting may wait on an LLM: timeout x (retries + 1) plus backoff.
DRAFT_TIME_LIMIT_MS = 15 * 60 * 1000


@dramatiq.actor(time_limit=DRAFT_TIME_LIMIT_MS, **RETRY)
def advance_consultation(consultation_id: int) -> None:
    try:
        dispatch(consultations.advance(current(), consultation_id))
    except consultations.NotYetDelivered as exc:
        # Waiting for the send_outbound actor is not a failure: look again
        # later without using up this message's retries.  Delivery ends in
        # sent or failed, so this stops.
        advance_consultation.send_with_options(args=(consultation_id,), delay=exc.delay_ms)
    except consultations.TryLater as exc:
        raise dramatiq.Retry(str(exc)) from None  # the actor's backoff: 1 s doubling to 5 min


@dramatiq.actor(time_limit=60_000, **RETRY)
def consultation_followup(inbound_id: int) -> None:
    try:
        dispatch(consultations.followup(current(), inbound_id))
    except consultations.TryLater as exc:
        raise dramatiq.Retry(str(exc)) from None


def unhandled_followups(session: Session, age: timedelta) -> list[Poke]:
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


if unhandled_followups not in recovery.RULES:
    recovery.RULES.append(unhandled_followups)
