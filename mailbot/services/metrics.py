"""Operational figures for the admin page and ``/metrics``.

All read-only and bounded: counts are one ``GROUP BY``; answer times look at
a recent window only, so the cost does not grow with the archive.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from mailbot.models import (
    Consultation,
    ConsultationState,
    InboundMessage,
    OutboundMessage,
    QuarantineItem,
    Reviewer,
    utcnow,
)

# States in which a consultation still needs someone (a person or the machine).
PENDING_STATES = (ConsultationState.RECEIVED, ConsultationState.ACKNOWLEDGED, ConsultationState.DRAFTING,
                  ConsultationState.AWAITING_REVIEW, ConsultationState.APPROVED, ConsultationState.NEEDS_INFO)


@dataclass
class Snapshot:
    per_state: dict[str, int]
    pending: int
    awaiting_review: int
    overdue: int                                  # awaiting review longer than the SLA
    median_answer_hours: float | None             # received -> answered, recent window
    answered_recent: int
    answers_per_reviewer_day: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> {day: n}
    outbound_per_state: dict[str, int] = field(default_factory=dict)
    inbound_per_status: dict[str, int] = field(default_factory=dict)
    open_quarantine: int = 0
    days: list[str] = field(default_factory=list)


def state_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(Consultation.state, func.count()).group_by(Consultation.state)).all()
    return {state: count for state, count in rows}


def _aware(value: datetime) -> datetime:
    # Every stored time is UTC; be tolerant of a naive value from a raw query.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def snapshot(session: Session, *, sla_hours: int = 24, window_days: int = 14, now: datetime | None = None) -> Snapshot:
    """Everything the metrics page shows, in a handful of queries."""
    now = now or utcnow()
    per_state = state_counts(session)
    pending = sum(per_state.get(s.value, 0) for s in PENDING_STATES)
    overdue = session.exec(
        select(func.count()).select_from(Consultation).where(
            Consultation.state == ConsultationState.AWAITING_REVIEW,
            Consultation.waiting_since < now - timedelta(hours=sla_hours))
    ).one()
    since = now - timedelta(days=window_days)
    answered = session.exec(
        select(Consultation.created_at, Consultation.answered_at, Consultation.approved_by_id)
        .where(Consultation.answered_at.is_not(None), Consultation.answered_at >= since)
    ).all()
    durations = [(_aware(a) - _aware(c)).total_seconds() / 3600 for c, a, _ in answered]
    names = {r.id: r.name for r in session.exec(select(Reviewer)).all()}
    per_reviewer: dict[str, Counter] = defaultdict(Counter)
    for _, answered_at, reviewer_id in answered:
        per_reviewer[names.get(reviewer_id, "(unknown)")][_aware(answered_at).date().isoformat()] += 1
    days = [(now.date() - timedelta(days=i)).isoformat() for i in range(min(window_days, 7) - 1, -1, -1)]
    outbound = dict(session.exec(select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)).all())
    inbound = dict(session.exec(select(InboundMessage.status, func.count()).group_by(InboundMessage.status)).all())
    open_quarantine = session.exec(
        select(func.count()).select_from(QuarantineItem).where(QuarantineItem.resolved_at.is_(None))).one()
    return Snapshot(
        per_state=per_state, pending=pending,
        awaiting_review=per_state.get(ConsultationState.AWAITING_REVIEW.value, 0),
        overdue=overdue,
        median_answer_hours=round(statistics.median(durations), 2) if durations else None,
        answered_recent=len(durations),
        answers_per_reviewer_day={name: dict(days_) for name, days_ in sorted(per_reviewer.items())},
        outbound_per_state=outbound, inbound_per_status=inbound, open_quarantine=open_quarantine,
        days=days,
    )
