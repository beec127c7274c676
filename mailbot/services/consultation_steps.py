"""The machine steps of a consultation (run by ``advance_consultation``).

::

    received --ack mail--> acknowledged --> drafting --draft stored--> awaiting_review
    approved --answer delivered--> sent      (permanent delivery failure --> failed)

plus :func:`followup`: the asker's reply in the thread reopens the
consultation with its history.  Each step claims its move with a
conditional update before (or, for drafting, after) the slow work, so it is
safe to run twice, by two workers, or again after a crash.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.mail.compose import ComposeError
from mailbot.models.consultation import FINAL_STATES
from mailbot.models import (
    AuditEvent, Consultation, ConsultationState as S, Draft, InboundMessage, OutboundMessage, OutboundState, utcnow,
)
from mailbot.services import Poke
from mailbot.services import consultation_mail as mails
from mailbot.services import notifications
from mailbot.services.consultation_drafting import DraftResult, make_draft
from mailbot.services.consultation_state import (
    MAX_DRAFT_ATTEMPTS, NotYetDelivered, TryLater, add_thread_id, audit, last_inbound, move,
)
from mailbot.services.delivery import queue_message
from mailbot.services.quarantine import quarantine

log = logging.getLogger(__name__)


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
        inbound = last_inbound(session, consultation)
        if not move(session, cid, (S.RECEIVED,), S.ACKNOWLEDGED):
            return []
        pokes: list[Poke] = []
        already = session.exec(select(OutboundMessage.id).where(
            OutboundMessage.consultation_id == cid, OutboundMessage.kind == "ack",
            OutboundMessage.inbound_id == (inbound.id if inbound else None))).first()
        reason = "no automatic reply allowed (cap, auto-submitted, or already sent)"
        if inbound is not None and inbound.auto_reply_ok and already is None:
            # A reply in a thread we already acknowledged (a follow-up, the
            # answer to our question back) gets the short note, not the
            # full new-question acknowledgement again.
            acked_before = session.exec(select(OutboundMessage.id).where(
                OutboundMessage.consultation_id == cid, OutboundMessage.kind == "ack")).first()
            try:
                message = (mails.followup_ack_message(ctx.settings, consultation, inbound) if acked_before
                           else mails.ack_message(ctx.settings, consultation, inbound,
                                                  ack_facts(ctx, session, consultation, inbound)))
            except ComposeError as exc:
                # Permanent: the same bytes fail the same way on every retry.
                # The question still goes to a reviewer; the ack is skipped.
                reason = f"acknowledgement not sent: {exc}"
                quarantine(session, kind="consultation", ref_id=cid, stage="ack", reason=reason)
            else:
                row = queue_message(session, message, kind="ack", consultation_id=cid, inbound_id=inbound.id)
                session.exec(update(Consultation).where(Consultation.id == cid).values(
                    thread_message_ids=add_thread_id(consultation, row.message_id)))
                pokes.append(Poke("send_outbound", row.id))
        audit(session, cid, "system", "acknowledged", ack_sent=bool(pokes), reason="" if pokes else reason)
    return pokes + [Poke("advance_consultation", cid)]


def ack_facts(ctx: Context, session, consultation: Consultation, inbound) -> dict | None:
    """The instant facts the acknowledgement states (``codes.instant_facts_in_ack``); a failure
    here never holds the acknowledgement back."""
    if not ctx.settings.codes.instant_facts_in_ack:
        return None
    from mailbot.answers.instant import instant_facts
    from mailbot.services.consultation_drafting import message_date, question_text  # noqa: I001

    try:
        return instant_facts(session, question_text(inbound, consultation), message_date=message_date(inbound))
    except Exception:  # noqa: BLE001 -- the acknowledgement matters more than its extras
        log.exception("instant facts for consultation %s failed; acknowledging without them", consultation.id)
        return None


def _start_drafting(ctx: Context, cid: int) -> list[Poke]:
    with ctx.db.session() as session:
        if not move(session, cid, (S.ACKNOWLEDGED,), S.DRAFTING, attempts=0):
            return []
    return run_draft(ctx, cid)


def run_draft(ctx: Context, cid: int, *, force_offline: bool = False) -> list[Poke]:
    with ctx.db.session() as session:
        consultation = session.get(Consultation, cid)
        if consultation is None or consultation.state != S.DRAFTING:
            return []
        if consultation.attempts > 0 and utcnow() - consultation.state_changed_at < draft_lease(ctx):
            return []  # an attempt started recently is probably still waiting on the LLM
        if consultation.attempts >= MAX_DRAFT_ATTEMPTS:
            reason = f"drafting did not finish after {consultation.attempts} attempts"
            if move(session, cid, (S.DRAFTING,), S.FAILED, failure_reason=reason):
                quarantine(session, kind="consultation", ref_id=cid, stage="drafting", reason=reason)
                audit(session, cid, "system", "failed", after=reason)
            return []
        # Counted (and timed) before the work, so a worker killed mid-draft still counts.
        session.exec(update(Consultation).where(Consultation.id == cid).values(
            attempts=Consultation.attempts + 1, state_changed_at=utcnow()))
    result = (ctx.drafter or make_draft)(ctx, cid, force_offline=force_offline)
    with ctx.db.session() as session:
        phi = {"has_phi": True} if result.redactions else {}   # once seen, the flag stays (until a purge)
        if not move(session, cid, (S.DRAFTING,), S.AWAITING_REVIEW, flags=result.verification.flags, **phi,
                    date_of_service=result.date_of_service,
                    code_systems=sorted({c["system"] for c in result.cited if c.get("system")}),
                    intents=result.intents, failure_reason=result.llm_failure[:2000]):
            return []  # someone else finished or reopened it; this draft is dropped
        _store_draft(session, cid, result)
        if result.llm_failure:
            quarantine(session, kind="consultation", ref_id=cid, stage="llm",
                       reason="LLM unavailable, offline draft used: " + result.llm_failure)
        audit(session, cid, "system", "drafted", after=result.body, source=result.source,
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
            if move(session, cid, (S.APPROVED,), S.FAILED, failure_reason=reason[:2000]):
                audit(session, cid, "system", "failed", after=reason)
            return []
        if out.state == OutboundState.PENDING:
            # First attempt still running: look again soon; after a temporary
            # failure: just after the next attempt is due.
            age = (utcnow() - out.created_at).total_seconds()
            delay = 500 if age < 10 else int(min(30.0, age / 4) * 1000)   # slower when the send is slow
            if out.next_attempt_at is not None:
                delay = int(max(0.0, (out.next_attempt_at - utcnow()).total_seconds()) * 1000) + 1_000
            raise NotYetDelivered(f"answer {out.id} for Q-{cid} not delivered yet", min(delay, 300_000))
        if move(session, cid, (S.APPROVED,), S.SENT, answered_at=out.sent_at or utcnow()):
            audit(session, cid, "system", "sent", message_id=out.message_id)
    return []


STEPS = {
    S.RECEIVED: _acknowledge,
    S.ACKNOWLEDGED: _start_drafting,
    S.DRAFTING: run_draft,
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
        # An open item keeps its place in the oldest-first queue (its
        # waiting_since); only a closed one (answered, rejected) starts a new wait.
        now = utcnow()
        clock = {"waiting_since": now} if state in FINAL_STATES else {}
        if state == S.DRAFTING:
            # Abandon the draft in flight: it cannot have seen this message.
            moved = move(session, cid, (S.DRAFTING,), S.ACKNOWLEDGED, new_reply_at=now)
        elif state not in (S.RECEIVED, S.ACKNOWLEDGED):
            moved = move(session, cid, (state,), S.RECEIVED, failure_reason="", new_reply_at=now, **clock)
        else:
            session.exec(update(Consultation).where(Consultation.id == cid).values(new_reply_at=now))
        if not moved:
            raise TryLater(f"Q-{cid} changed state while reopening; try again")
        audit(session, cid, inbound.from_addr or "asker", "followup", before=state, inbound_id=inbound_id)
        notices = notifications.queue_notice(session, ctx.settings, consultation, consultation.claimed_by_id,
                                             "asker_replied")
    return notices + [Poke("advance_consultation", cid)]
