"""Consultation state: the errors reviewers see, and the few helpers every
move uses -- a conditional state change, an audit row, thread bookkeeping.

A move is ``UPDATE consultation SET state = new, version = version + 1 ...
WHERE id = ? AND state IN (allowed) [AND version = expected]``; the caller
learns from the row count whether it won, so two workers (or two reviewers)
can never both make the same move.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from mailbot.models import AuditEvent, Consultation, Draft, InboundMessage, utcnow

MAX_DRAFT_ATTEMPTS = 5


class ConsultationError(ValueError):
    """A reviewer action that cannot be done; the message says why."""


class StaleEdit(ConsultationError):
    """Someone else changed the consultation since the reviewer loaded it."""


class InvalidTransition(ConsultationError):
    """The action is not allowed from the consultation's current state."""


class UnverifiedCodes(ConsultationError):
    """The answer cites codes that do not exist in the code sets."""

    def __init__(self, codes: list[dict[str, Any]]) -> None:
        self.codes = codes
        listed = ", ".join(f"{c['code']} ({c['status']})" for c in codes)
        super().__init__(f"remove or fix these codes before approving: {listed}")


class ApprovalRefused(ConsultationError):
    """The answer recommends a code that must not go out as it stands (header,
    terminated, not yet valid, an NCCI pair it does not address) or still
    carries the offline label; a reviewer may override with a reason."""

    def __init__(self, problems: list[Any]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.reason for p in problems))


class TryLater(Exception):
    """Not an error: the step cannot be done yet and should run again later."""


class NotYetDelivered(TryLater):
    """The answer is queued but not delivered yet; look again in ``delay_ms``."""

    def __init__(self, message: str, delay_ms: int = 1_000) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms


def move(session: Session, cid: int, from_states: tuple[str, ...], to_state: str, *,
         expected_version: int | None = None, **values: Any) -> bool:
    """Conditionally move ``cid`` to ``to_state``; True when this call won."""
    now = utcnow()
    stmt = update(Consultation).where(Consultation.id == cid, Consultation.state.in_(list(from_states)))
    if expected_version is not None:
        stmt = stmt.where(Consultation.version == expected_version)
    result = session.exec(stmt.values(state=to_state, version=Consultation.version + 1, updated_at=now,
                                      state_changed_at=now, **values))
    return result.rowcount == 1


def audit(session: Session, cid: int, actor: str, action: str, *, before: str = "", after: str = "",
          **detail: Any) -> None:
    session.add(AuditEvent(consultation_id=cid, actor=actor, action=action, before=before, after=after,
                           detail=detail))


def latest_draft(session: Session, cid: int) -> Draft | None:
    return session.exec(select(Draft).where(Draft.consultation_id == cid).order_by(Draft.id.desc())).first()


def last_inbound(session: Session, consultation: Consultation) -> InboundMessage | None:
    return session.get(InboundMessage, consultation.last_inbound_id) if consultation.last_inbound_id else None


def add_thread_id(consultation: Consultation, message_id: str) -> list[str]:
    return [*(consultation.thread_message_ids or []), message_id][-500:]
