"""Internal notes on a consultation: for reviewers only.

Notes live in their own table, which no mail template and no drafting
context ever reads -- so a note cannot be sent to an asker or shown to an
LLM by accident.  Any active reviewer may add one; adding is audited.
"""

from __future__ import annotations

from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.models import Consultation, ConsultationNote, Reviewer
from mailbot.services.consultation_state import ConsultationError, audit

MAX_NOTE = 10_000


def add(ctx: Context, cid: int, reviewer_id: int, body: str) -> int:
    body = body.strip()
    if not body:
        raise ConsultationError("the note is empty")
    if len(body) > MAX_NOTE:
        raise ConsultationError(f"a note is at most {MAX_NOTE:,} characters")
    with ctx.db.session() as session:
        reviewer = session.get(Reviewer, reviewer_id)
        if reviewer is None or not reviewer.active:
            raise ConsultationError("unknown or disabled reviewer")
        if session.get(Consultation, cid) is None:
            raise ConsultationError(f"consultation Q-{cid} does not exist")
        note = ConsultationNote(consultation_id=cid, author_id=reviewer_id, body=body)
        session.add(note)
        session.flush()
        audit(session, cid, reviewer.email, "note_added", note_id=note.id)
        return note.id


def for_consultation(session: Session, cid: int) -> list[dict]:
    rows = session.exec(select(ConsultationNote, Reviewer.name).join(Reviewer, ConsultationNote.author_id == Reviewer.id)
                        .where(ConsultationNote.consultation_id == cid).order_by(ConsultationNote.id)).all()
    return [{"note": note, "author": name} for note, name in rows]
