"""The consultation service: what the queue and the reviewer web app call.

Machine steps (:func:`advance`, :func:`followup`) live in
:mod:`mailbot.services.consultation_steps`; the reviewer actions are here:
:func:`save_draft`, :func:`approve`, :func:`request_info`, :func:`reject`,
:func:`regenerate`.  Each takes the context, ids, the reviewer id and (for
edits) the version the reviewer loaded -- an optimistic lock: a change made
by someone else in between raises :class:`StaleEdit`, a move the current
state does not allow raises :class:`InvalidTransition` -- and returns the
pokes for the caller to dispatch.  Every action writes an audit row with
the text before and after.  Approval refuses (:class:`UnverifiedCodes`)
while the answer cites a code that does not exist in the code sets, and
(:class:`ApprovalRefused`) while it recommends a header, terminated or
not-yet-valid code, leaves an NCCI pair unaddressed or keeps the offline
label -- unless the reviewer overrides with a reason, which is audited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.drafting.verify import approval_problems, claim_setting, codes_still_in, verify_answer
from mailbot.mail.compose import ComposeError
from mailbot.models import Consultation, ConsultationState as S, Draft, Reviewer
from mailbot.services import Poke
from mailbot.services import consultation_mail as mails
from mailbot.services.consultation_state import (  # noqa: F401  (the errors are part of this API)
    MAX_DRAFT_ATTEMPTS, ApprovalRefused, ConsultationError, InvalidTransition, NotYetDelivered, StaleEdit, TryLater,
    UnverifiedCodes, add_thread_id, audit, last_inbound, latest_draft, move,
)
from mailbot.services.consultation_steps import advance, draft_lease, followup, run_draft  # noqa: F401
from mailbot.services.delivery import queue_message

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
    # A reviewer acting on the item has seen the asker's latest reply: the queue's "new reply" mark goes.
    if not move(session, cid, allowed, to_state, expected_version=expected_version, new_reply_at=None, **values):
        raise StaleEdit(f"Q-{cid} was changed by someone else just now; reload to see the changes")
    return consultation, reviewer


def _verified(ctx: Context, cid: int, body: str):
    with ctx.db.read() as session:
        consultation = session.get(Consultation, cid)
        draft = latest_draft(session, cid)
        cited = codes_still_in(body, draft.cited_codes if draft else [])
        # the NCCI table that decides: from the question the machine draft answered
        asked = session.exec(select(Draft.redacted_question).where(
            Draft.consultation_id == cid, Draft.redacted_question != "").order_by(Draft.id.desc())).first()
        return verify_answer(session, cited, body, consultation.date_of_service if consultation else None,
                             setting=claim_setting(asked or ""))


def check_answer(ctx: Context, cid: int, body: str):
    """``(verification, problems)`` for ``body``: what approval would refuse and why."""
    verification = _verified(ctx, cid, body)
    with ctx.db.read() as session:
        consultation = session.get(Consultation, cid)
        on = consultation.date_of_service if consultation else None
    return verification, approval_problems(verification, body, on)


def save_draft(ctx: Context, cid: int, reviewer_id: int, body: str, expected_version: int) -> list[Poke]:
    """Store the reviewer's edit (state unchanged, version bumped)."""
    verification = _verified(ctx, cid, body)
    with ctx.db.session() as session:
        before = latest_draft(session, cid)
        current = session.get(Consultation, cid)
        state = current.state if current else S.AWAITING_REVIEW
        _, reviewer = _reviewer_move(session, cid, reviewer_id, "edit", REVIEWABLE, state, expected_version,
                                     flags=verification.flags)
        session.add(Draft(consultation_id=cid, source="reviewer", body=body, cited_codes=verification.codes,
                          created_by_id=reviewer_id))
        audit(session, cid, reviewer.email, "draft_saved", before=before.body if before else "", after=body)
    return []


def approve(ctx: Context, cid: int, reviewer_id: int, body: str, expected_version: int,
            override_reason: str = "") -> list[Poke]:
    """Approve ``body`` as the answer: queue the reply; it is sent by the queue.

    Refused while a cited code does not exist (no override) or while the
    approval guard finds a problem, unless ``override_reason`` says why the
    answer may go anyway (audited as ``approval_override``)."""
    if not body.strip():
        raise ConsultationError("the answer is empty")
    verification, problems = check_answer(ctx, cid, body)
    if verification.blocking:
        raise UnverifiedCodes(verification.blocking)
    overridden = [p for p in problems if p.overridable]
    if overridden and not override_reason.strip():
        raise ApprovalRefused(overridden)
    with ctx.db.session() as session:
        before = latest_draft(session, cid)
        consultation, reviewer = _reviewer_move(
            session, cid, reviewer_id, "approve", (S.AWAITING_REVIEW, S.FAILED), S.APPROVED, expected_version,
            approved_by_id=reviewer_id, flags=verification.flags)
        if before is None or before.source != "reviewer" or before.body != body:
            session.add(Draft(consultation_id=cid, source="reviewer", body=body, cited_codes=verification.codes,
                              created_by_id=reviewer_id))
        try:
            message = mails.answer_message(ctx.settings, consultation, last_inbound(session, consultation), reviewer,
                                           body, verification.codes, verification.ncci)
        except ComposeError as exc:  # e.g. the asker's address cannot be written to
            raise ConsultationError(f"the reply cannot be written: {exc}") from exc
        row = queue_message(session, message, kind="answer", consultation_id=cid,
                            inbound_id=consultation.last_inbound_id)
        session.exec(update(Consultation).where(Consultation.id == cid).values(
            thread_message_ids=add_thread_id(consultation, row.message_id)))
        if overridden:
            audit(session, cid, reviewer.email, "approval_override", after=override_reason.strip()[:2000],
                  problems=[p.to_dict() for p in overridden])
        audit(session, cid, reviewer.email, "approved", before=before.body if before else "", after=body,
              outbound_id=row.id, flags=verification.flags)
    return [Poke("send_outbound", row.id), Poke("advance_consultation", cid)]


def preview_answer(ctx: Context, cid: int, reviewer_id: int, body: str) -> dict[str, Any]:
    """Exactly what :func:`approve` would send for ``body`` (subject, text and
    HTML parts), and the problems that would stop it; nothing is stored."""
    verification, problems = check_answer(ctx, cid, body)
    with ctx.db.read() as session:
        consultation = session.get(Consultation, cid)
        reviewer = session.get(Reviewer, reviewer_id)
        if consultation is None or reviewer is None:
            raise ConsultationError(f"consultation Q-{cid} or reviewer {reviewer_id} does not exist")
        message = mails.answer_message(ctx.settings, consultation, last_inbound(session, consultation), reviewer,
                                       body, verification.codes, verification.ncci)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return {"subject": str(message["Subject"]), "to": str(message["To"]),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
            "problems": problems}


def request_info(ctx: Context, cid: int, reviewer_id: int, question: str, expected_version: int) -> list[Poke]:
    """Ask the asker for missing facts, in the thread."""
    if not question.strip():
        raise ConsultationError("the question to the asker is empty")
    with ctx.db.session() as session:
        consultation, reviewer = _reviewer_move(session, cid, reviewer_id, "request information from the asker",
                                                (S.AWAITING_REVIEW, S.FAILED), S.NEEDS_INFO, expected_version)
        try:
            message = mails.needs_info_message(ctx.settings, consultation, last_inbound(session, consultation),
                                               reviewer, question)
        except ComposeError as exc:  # e.g. the asker's address cannot be written to
            raise ConsultationError(f"the reply cannot be written: {exc}") from exc
        row = queue_message(session, message, kind="needs_info", consultation_id=cid,
                            inbound_id=consultation.last_inbound_id)
        session.exec(update(Consultation).where(Consultation.id == cid).values(
            thread_message_ids=add_thread_id(consultation, row.message_id)))
        audit(session, cid, reviewer.email, "needs_info", after=question, outbound_id=row.id)
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
            try:
                message = mails.rejected_message(ctx.settings, consultation, last_inbound(session, consultation),
                                                 reviewer, reply_text)
            except ComposeError as exc:  # e.g. the asker's address cannot be written to
                raise ConsultationError(f"the reply cannot be written: {exc}") from exc
            row = queue_message(session, message, kind="rejected", consultation_id=cid,
                                inbound_id=consultation.last_inbound_id)
            pokes.append(Poke("send_outbound", row.id))
        audit(session, cid, reviewer.email, "rejected", before=consultation.state, after=reason,
              reply_sent=bool(pokes))
    return pokes


def regenerate(ctx: Context, cid: int, reviewer_id: int, offline: bool = False) -> list[Poke]:
    """Draft again.  ``offline=True`` drafts from the knowledge base at once
    (no LLM); otherwise the queue drafts with the LLM."""
    with ctx.db.session() as session:
        consultation, reviewer = _reviewer_move(session, cid, reviewer_id, "regenerate the draft", REVIEWABLE,
                                                S.DRAFTING, None, attempts=0)
        audit(session, cid, reviewer.email, "regenerate", before=consultation.state, offline=offline)
    if offline:
        return run_draft(ctx, cid, force_offline=True)
    return [Poke("advance_consultation", cid)]
