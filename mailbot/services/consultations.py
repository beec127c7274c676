"""The consultation state machine and the reviewer actions on it.

Machine steps (:func:`advance`, run by the ``advance_consultation`` actor)::

    received --ack mail--> acknowledged --> drafting --draft stored--> awaiting_review
    approved --answer delivered--> sent      (permanent delivery failure --> failed)

Reviewer actions (the web app calls these, then dispatches the pokes):
:func:`save_draft`, :func:`approve`, :func:`request_info`, :func:`reject`,
:func:`regenerate`.  The asker's reply in the thread (:func:`followup`)
reopens the consultation with its history.

Every move is a conditional ``UPDATE ... WHERE state IN (...)`` (and, for
reviewer edits, ``AND version = expected``), committed together with its
side effects (the queued mail, the draft, the audit row); a step that loses
the race changes nothing.  So every step is safe to run twice, by two
workers, or again after a crash.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.drafting.verify import codes_still_in, verify_answer
from mailbot.models import (
    AuditEvent, Consultation, ConsultationState as S, Draft, InboundMessage, OutboundMessage, OutboundState,
    Reviewer, utcnow,
)
from mailbot.services import Poke
from mailbot.services import consultation_mail as mails
from mailbot.services.consultation_drafting import DraftResult, make_draft
from mailbot.services.delivery import queue_message
from mailbot.services.quarantine import quarantine

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


class TryLater(Exception):
    """Not an error: the step cannot be done yet and should run again later."""


class NotYetDelivered(TryLater):
    """The answer is queued but not delivered yet; look again in ``delay_ms``."""

    def __init__(self, message: str, delay_ms: int = 1_000) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms


# -- helpers -------------------------------------------------------------------

def _move(session: Session, cid: int, from_states: tuple[str, ...], to_state: str, *,
          expected_version: int | None = None, **values: Any) -> bool:
    """Conditionally move ``cid`` to ``to_state``; True when this call won."""
    now = utcnow()
    stmt = update(Consultation).where(Consultation.id == cid, Consultation.state.in_(list(from_states)))
    if expected_version is not None:
        stmt = stmt.where(Consultation.version == expected_version)
    result = session.exec(stmt.values(state=to_state, version=Consultation.version + 1, updated_at=now,
                                      state_changed_at=now, **values))
    return result.rowcount == 1


def _audit(session: Session, cid: int, actor: str, action: str, *, before: str = "", after: str = "",
           **detail: Any) -> None:
    session.add(AuditEvent(consultation_id=cid, actor=actor, action=action, before=before, after=after,
                           detail=detail))


def _latest_draft(session: Session, cid: int) -> Draft | None:
    return session.exec(select(Draft).where(Draft.consultation_id == cid).order_by(Draft.id.desc())).first()


def _last_inbound(session: Session, consultation: Consultation) -> InboundMessage | None:
    return session.get(InboundMessage, consultation.last_inbound_id) if consultation.last_inbound_id else None


def _add_thread_id(consultation: Consultation, message_id: str) -> list[str]:
    return [*(consultation.thread_message_ids or []), message_id][-500:]


# -- machine steps ---------------------------------------------------------------

def advance(ctx: Context, cid: int) -> list[Poke]:
    """Move consultation ``cid`` one machine step on; returns the pokes to send.
    Raises :class:`NotYetDelivered` while an approved answer is in flight."""
    with ctx.db.read() as session:
        consultation = session.get(Consultation, cid)
    if consultation is None:
        return []
    step = STEPS.get(consultation.state)
    return step(ctx, cid) if step else []


def _acknowledge(ctx: Context, cid: int) -> list[Poke]:
    with ctx.db.session() as session:
        consultation = session.get(Consultation, cid)
        inbound = _last_inbound(session, consultation)
        if not _move(session, cid, (S.RECEIVED,), S.ACKNOWLEDGED):
            return []
        pokes: list[Poke] = []
        already = session.exec(select(OutboundMessage.id).where(
            OutboundMessage.consultation_id == cid, OutboundMessage.kind == "ack",
            OutboundMessage.inbound_id == (inbound.id if inbound else None))).first()
        if inbound is not None and inbound.auto_reply_ok and already is None:
            message = mails.ack_message(ctx.settings, consultation, inbound)
            row = queue_message(session, message, kind="ack", consultation_id=cid, inbound_id=inbound.id)
            session.exec(update(Consultation).where(Consultation.id == cid).values(
                thread_message_ids=_add_thread_id(consultation, row.message_id)))
            pokes.append(Poke("send_outbound", row.id))
        _audit(session, cid, "system", "acknowledged", ack_sent=bool(pokes),
               reason="" if pokes else "no automatic reply allowed (cap, auto-submitted, or already sent)")
    return pokes + [Poke("advance_consultation", cid)]


def _start_drafting(ctx: Context, cid: int) -> list[Poke]:
    with ctx.db.session() as session:
        if not _move(session, cid, (S.ACKNOWLEDGED,), S.DRAFTING, attempts=0):
            return []
    return _draft(ctx, cid)


def _draft(ctx: Context, cid: int, *, force_offline: bool = False) -> list[Poke]:
    with ctx.db.session() as session:
        consultation = session.get(Consultation, cid)
        if consultation is None or consultation.state != S.DRAFTING:
            return []
        if consultation.attempts > 0 and utcnow() - consultation.state_changed_at < draft_lease(ctx):
            return []  # an attempt started recently is probably still waiting on the LLM
        if consultation.attempts >= MAX_DRAFT_ATTEMPTS:
            reason = f"drafting did not finish after {consultation.attempts} attempts"
            if _move(session, cid, (S.DRAFTING,), S.FAILED, failure_reason=reason):
                quarantine(session, kind="consultation", ref_id=cid, stage="drafting", reason=reason)
                _audit(session, cid, "system", "failed", after=reason)
            return []
        # Counted (and timed) before the work, so a worker killed mid-draft still counts.
        session.exec(update(Consultation).where(Consultation.id == cid).values(
            attempts=Consultation.attempts + 1, state_changed_at=utcnow()))
    result = make_draft(ctx, cid, force_offline=force_offline)
    with ctx.db.session() as session:
        if not _move(session, cid, (S.DRAFTING,), S.AWAITING_REVIEW, flags=result.verification.flags,
                     date_of_service=result.date_of_service,
                     code_systems=sorted({c["system"] for c in result.cited if c.get("system")}),
                     failure_reason=result.llm_failure[:2000]):
            return []  # someone else finished or reopened it; this draft is dropped
        _store_draft(session, cid, result)
        if result.llm_failure:
            quarantine(session, kind="consultation", ref_id=cid, stage="llm",
                       reason="LLM unavailable, offline draft used: " + result.llm_failure)
        _audit(session, cid, "system", "drafted", after=result.body, source=result.source,
               flags=result.verification.flags, llm_failure=result.llm_failure)
    return []


def draft_lease(ctx: Context) -> timedelta:
    """How long one drafting attempt may take before another may start: the
    LLM client's worst case (timeout x tries, plus backoff) with a margin.
    Without it, the reconciler's pokes would start a second draft -- and a
    second LLM call -- while the first is still waiting on a slow model."""
    llm = ctx.settings.llm
    if not llm.base_url:
        return timedelta(seconds=30)
    return timedelta(seconds=llm.timeout_seconds * (llm.max_retries + 1) + 8 * llm.max_retries + 30)


def _store_draft(session: Session, cid: int, result: DraftResult) -> None:
    session.add(Draft(
        consultation_id=cid, source=result.source, body=result.body, cited_codes=result.cited,
        questions=result.questions, confidence=result.confidence, model=result.model[:255],
        redacted_question=result.redacted_question, prompt=result.prompt, response=result.response,
        redactions=result.redactions))


def _finish_sending(ctx: Context, cid: int) -> list[Poke]:
    with ctx.db.session() as session:
        out = session.exec(select(OutboundMessage).where(
            OutboundMessage.consultation_id == cid, OutboundMessage.kind == "answer",
        ).order_by(OutboundMessage.id.desc())).first()
        if out is None or out.state == OutboundState.FAILED:
            reason = f"answer could not be delivered: {out.last_error if out else 'no answer queued'}"
            if _move(session, cid, (S.APPROVED,), S.FAILED, failure_reason=reason[:2000]):
                _audit(session, cid, "system", "failed", after=reason)
            return []
        if out.state == OutboundState.PENDING:
            # First attempt still running: look again soon; after a temporary
            # failure: just after the next attempt is due.
            delay = 500
            if out.next_attempt_at is not None:
                delay = int(max(0.0, (out.next_attempt_at - utcnow()).total_seconds()) * 1000) + 1_000
            raise NotYetDelivered(f"answer {out.id} for Q-{cid} not delivered yet", min(delay, 300_000))
        if _move(session, cid, (S.APPROVED,), S.SENT, answered_at=out.sent_at or utcnow()):
            _audit(session, cid, "system", "sent", message_id=out.message_id)
    return []


STEPS = {
    S.RECEIVED: _acknowledge,
    S.ACKNOWLEDGED: _start_drafting,
    S.DRAFTING: _draft,
    S.APPROVED: _finish_sending,
}


def followup(ctx: Context, inbound_id: int) -> list[Poke]:
    """The asker wrote again in the thread: reopen with history."""
    with ctx.db.session() as session:
        inbound = session.get(InboundMessage, inbound_id)
        if inbound is None or inbound.consultation_id is None:
            return []
        cid = inbound.consultation_id
        earlier = session.exec(select(AuditEvent).where(
            AuditEvent.consultation_id == cid, AuditEvent.action == "followup")).all()
        if any((e.detail or {}).get("inbound_id") == inbound_id for e in earlier):
            return [Poke("advance_consultation", cid)]  # already reopened for this message
        consultation = session.get(Consultation, cid)
        state = consultation.state
        if state == S.APPROVED:
            raise NotYetDelivered(f"Q-{cid}: reopen after the approved answer is delivered")
        moved = True
        if state == S.DRAFTING:
            # Abandon the draft in flight: it cannot have seen this message.
            moved = _move(session, cid, (S.DRAFTING,), S.ACKNOWLEDGED, waiting_since=utcnow())
        elif state not in (S.RECEIVED, S.ACKNOWLEDGED):
            moved = _move(session, cid, (state,), S.RECEIVED, waiting_since=utcnow(), failure_reason="")
        if not moved:
            raise TryLater(f"Q-{cid} changed state while reopening; try again")
        _audit(session, cid, inbound.from_addr or "asker", "followup", before=state, inbound_id=inbound_id)
    return [Poke("advance_consultation", cid)]


# -- reviewer actions --------------------------------------------------------------

REVIEWABLE = (S.AWAITING_REVIEW, S.NEEDS_INFO, S.FAILED)


def _reviewer_move(session: Session, cid: int, reviewer_id: int, action: str, allowed: tuple[str, ...],
                   to_state: str, expected_version: int | None, **values: Any) -> tuple[Consultation, Reviewer]:
    """Check and make a reviewer's move; raises StaleEdit / InvalidTransition."""
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None or not reviewer.active:
        raise ConsultationError(f"reviewer {reviewer_id} is unknown or disabled")
    consultation = session.get(Consultation, cid)
    if consultation is None:
        raise ConsultationError(f"consultation Q-{cid} does not exist")
    if expected_version is not None and consultation.version != expected_version:
        raise StaleEdit(f"Q-{cid} was changed by someone else (version {consultation.version}, "
                        f"you edited version {expected_version}); reload to see the changes")
    if consultation.state not in allowed:
        raise InvalidTransition(f"cannot {action} Q-{cid} while it is {consultation.state}")
    if not _move(session, cid, allowed, to_state, expected_version=expected_version, **values):
        raise StaleEdit(f"Q-{cid} was changed by someone else just now; reload to see the changes")
    return consultation, reviewer


def _verified(ctx: Context, cid: int, body: str):
    with ctx.db.read() as session:
        consultation = session.get(Consultation, cid)
        draft = _latest_draft(session, cid)
        cited = codes_still_in(body, draft.cited_codes if draft else [])
        return verify_answer(session, cited, body, consultation.date_of_service if consultation else None)


def save_draft(ctx: Context, cid: int, reviewer_id: int, body: str, expected_version: int) -> list[Poke]:
    """Store the reviewer's edit (state unchanged, version bumped)."""
    verification = _verified(ctx, cid, body)
    with ctx.db.session() as session:
        before = _latest_draft(session, cid)
        current = session.get(Consultation, cid)
        state = current.state if current else S.AWAITING_REVIEW
        _, reviewer = _reviewer_move(session, cid, reviewer_id, "edit", REVIEWABLE, state, expected_version,
                                     flags=verification.flags)
        session.add(Draft(consultation_id=cid, source="reviewer", body=body, cited_codes=verification.codes,
                          created_by_id=reviewer_id))
        _audit(session, cid, reviewer.email, "draft_saved", before=before.body if before else "", after=body)
    return []


def approve(ctx: Context, cid: int, reviewer_id: int, body: str, expected_version: int) -> list[Poke]:
    """Approve ``body`` as the answer: queue the reply; it is sent by the queue."""
    if not body.strip():
        raise ConsultationError("the answer is empty")
    verification = _verified(ctx, cid, body)
    if verification.blocking:
        raise UnverifiedCodes(verification.blocking)
    with ctx.db.session() as session:
        before = _latest_draft(session, cid)
        consultation, reviewer = _reviewer_move(
            session, cid, reviewer_id, "approve", (S.AWAITING_REVIEW, S.FAILED), S.APPROVED, expected_version,
            approved_by_id=reviewer_id, flags=verification.flags)
        session.add(Draft(consultation_id=cid, source="reviewer", body=body, cited_codes=verification.codes,
                          created_by_id=reviewer_id))
        message = mails.answer_message(ctx.settings, consultation, _last_inbound(session, consultation), reviewer,
                                       body, verification.codes, verification.ncci)
        row = queue_message(session, message, kind="answer", consultation_id=cid,
                            inbound_id=consultation.last_inbound_id)
        session.exec(update(Consultation).where(Consultation.id == cid).values(
            thread_message_ids=_add_thread_id(consultation, row.message_id)))
        _audit(session, cid, reviewer.email, "approved", before=before.body if before else "", after=body,
               outbound_id=row.id, flags=verification.flags)
    return [Poke("send_outbound", row.id), Poke("advance_consultation", cid)]


def request_info(ctx: Context, cid: int, reviewer_id: int, question: str, expected_version: int) -> list[Poke]:
    """Ask the asker for missing facts, in the thread."""
    if not question.strip():
        raise ConsultationError("the question to the asker is empty")
    with ctx.db.session() as session:
        consultation, reviewer = _reviewer_move(session, cid, reviewer_id, "request information from the asker",
                                                (S.AWAITING_REVIEW, S.FAILED), S.NEEDS_INFO, expected_version)
        message = mails.needs_info_message(ctx.settings, consultation, _last_inbound(session, consultation),
                                           reviewer, question)
        row = queue_message(session, message, kind="needs_info", consultation_id=cid,
                            inbound_id=consultation.last_inbound_id)
        session.exec(update(Consultation).where(Consultation.id == cid).values(
            thread_message_ids=_add_thread_id(consultation, row.message_id)))
        _audit(session, cid, reviewer.email, "needs_info", after=question, outbound_id=row.id)
    return [Poke("send_outbound", row.id)]


def reject(ctx: Context, cid: int, reviewer_id: int, reason: str, reply_text: str | None = None,
           expected_version: int | None = None) -> list[Poke]:
    """Close without an answer; optionally tell the asker why."""
    with ctx.db.session() as session:
        consultation, reviewer = _reviewer_move(
            session, cid, reviewer_id, "reject",
            (S.RECEIVED, S.ACKNOWLEDGED, S.DRAFTING, S.AWAITING_REVIEW, S.NEEDS_INFO, S.FAILED),
            S.REJECTED, expected_version, failure_reason=reason[:2000])
        pokes: list[Poke] = []
        if reply_text and reply_text.strip():
            message = mails.rejected_message(ctx.settings, consultation, _last_inbound(session, consultation),
                                             reviewer, reply_text)
            row = queue_message(session, message, kind="rejected", consultation_id=cid,
                                inbound_id=consultation.last_inbound_id)
            pokes.append(Poke("send_outbound", row.id))
        _audit(session, cid, reviewer.email, "rejected", before=consultation.state, after=reason,
               reply_sent=bool(pokes))
    return pokes


def regenerate(ctx: Context, cid: int, reviewer_id: int, offline: bool = False) -> list[Poke]:
    """Draft again.  ``offline=True`` drafts from the knowledge base at once
    (no LLM); otherwise the queue drafts with the LLM."""
    with ctx.db.session() as session:
        consultation, reviewer = _reviewer_move(session, cid, reviewer_id, "regenerate the draft", REVIEWABLE,
                                                S.DRAFTING, None, attempts=0)
        _audit(session, cid, reviewer.email, "regenerate", before=consultation.state, offline=offline)
    if offline:
        return _draft(ctx, cid, force_offline=True)
    return [Poke("advance_consultation", cid)]
