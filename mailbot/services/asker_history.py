"""The asker's earlier consultations, for the detail page: what they asked
before and what we answered (the last reviewer text of each)."""

from __future__ import annotations

from sqlmodel import Session, func, select

from mailbot.models import Consultation, Draft

LIMIT = 10


def earlier(session: Session, consultation: Consultation, limit: int = LIMIT) -> list[dict]:
    """Up to ``limit`` other consultations from the same address, newest first."""
    rows = session.exec(select(Consultation).where(
        func.lower(Consultation.asker_email) == (consultation.asker_email or "").lower(),
        Consultation.id != consultation.id).order_by(Consultation.created_at.desc(), Consultation.id.desc())
        .limit(limit)).all()
    answers: dict[int, str] = {}
    ids = [c.id for c in rows]
    if ids:
        for d in session.exec(select(Draft).where(Draft.consultation_id.in_(ids), Draft.source == "reviewer")
                              .order_by(Draft.id)).all():
            answers[d.consultation_id] = d.body          # the last one wins
    return [{"c": c, "answer": answers.get(c.id, "") if c.state in ("sent", "approved") else ""} for c in rows]
