"""Claims: one reviewer works a consultation at a time.

A claim is a conditional update (``claimed_by_id`` is set only where it is
still empty or already ours), so two reviewers pressing "claim" at the same
moment cannot both win; the loser gets :class:`ClaimConflict` naming who holds
it.  Edits are additionally guarded by ``Consultation.version`` in the
consultation service (optimistic locking), so even an admin reassigning a
claim mid-edit cannot make two people's saves overwrite each other.
"""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.models import AuditEvent, Consultation, ConsultationState, Reviewer, ReviewerRole, utcnow

# A reviewer may hold a consultation only while a person has work to do on it.
CLAIMABLE_STATES = (ConsultationState.AWAITING_REVIEW, ConsultationState.NEEDS_INFO,
                    ConsultationState.DRAFTING)


class ClaimError(Exception):
    """A claim request that cannot be honoured; ``str()`` is the user message."""


class ClaimConflict(ClaimError):
    def __init__(self, holder: Reviewer | None, message: str) -> None:
        super().__init__(message)
        self.holder = holder


def _reviewer(session: Session, reviewer_id: int) -> Reviewer:
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None or not reviewer.active:
        raise ClaimError("that reviewer account does not exist or is disabled")
    return reviewer


def _audit(session: Session, cid: int, actor: Reviewer, action: str, before: str, after: str) -> None:
    session.add(AuditEvent(consultation_id=cid, actor=actor.email, action=action, before=before, after=after))


def _holder_label(session: Session, holder_id: int | None) -> str:
    if holder_id is None:
        return "nobody"
    holder = session.get(Reviewer, holder_id)
    return f"{holder.name} <{holder.email}>" if holder else f"reviewer #{holder_id}"


def claim(ctx: Context, cid: int, reviewer_id: int) -> Consultation:
    """Give consultation ``cid`` to ``reviewer_id``; claiming one's own claim
    again is harmless.  Raises :class:`ClaimConflict` when someone else holds
    it, :class:`ClaimError` when it is not waiting for a reviewer."""
    with ctx.db.session() as session:
        me = _reviewer(session, reviewer_id)
        result = session.exec(
            update(Consultation)
            .where(Consultation.id == cid,
                   Consultation.state.in_([s.value for s in CLAIMABLE_STATES]),
                   or_(Consultation.claimed_by_id.is_(None), Consultation.claimed_by_id == reviewer_id))
            .values(claimed_by_id=reviewer_id, claimed_at=utcnow())
        )
        consultation = session.get(Consultation, cid)
        if consultation is None:
            raise ClaimError(f"consultation Q-{cid} does not exist")
        session.refresh(consultation)
        if result.rowcount == 0:
            if consultation.claimed_by_id not in (None, reviewer_id):
                raise ClaimConflict(
                    session.get(Reviewer, consultation.claimed_by_id),
                    f"Q-{cid} is already claimed by {_holder_label(session, consultation.claimed_by_id)}; "
                    "ask them or an admin to release it")
            raise ClaimError(f"Q-{cid} is {consultation.state.replace('_', ' ')} and cannot be claimed")
        _audit(session, cid, me, "claim", "", me.email)
        return consultation


def claim_next(ctx: Context, reviewer_id: int, *, attempts: int = 5) -> int | None:
    """Claim the oldest unclaimed consultation awaiting review ("take next").
    Returns its id, or ``None`` when nothing is waiting.  Two reviewers
    pressing it together get different items: the claim is conditional, and
    the loser simply tries the next candidate."""
    for _ in range(attempts):
        with ctx.db.read() as session:
            candidates = session.exec(
                select(Consultation.id)
                .where(Consultation.state == ConsultationState.AWAITING_REVIEW, Consultation.claimed_by_id.is_(None))
                .order_by(Consultation.waiting_since, Consultation.id).limit(5)
            ).all()
        if not candidates:
            return None
        for cid in candidates:
            try:
                claim(ctx, cid, reviewer_id)
            except ClaimConflict:
                continue
            except ClaimError:
                continue  # moved on since we looked (approved, rejected ...)
            return cid
    return None


def unclaim(ctx: Context, cid: int, reviewer_id: int) -> Consultation:
    """Release a claim.  The holder may always release it; an admin may
    release anyone's."""
    with ctx.db.session() as session:
        me = _reviewer(session, reviewer_id)
        condition = [Consultation.id == cid, Consultation.claimed_by_id.is_not(None)]
        if me.role != ReviewerRole.ADMIN:
            condition.append(Consultation.claimed_by_id == reviewer_id)
        before = session.get(Consultation, cid)
        if before is None:
            raise ClaimError(f"consultation Q-{cid} does not exist")
        holder = before.claimed_by_id
        result = session.exec(update(Consultation).where(*condition).values(claimed_by_id=None, claimed_at=None))
        session.refresh(before)
        if result.rowcount == 0:
            if before.claimed_by_id is None:
                return before
            raise ClaimConflict(session.get(Reviewer, before.claimed_by_id),
                                f"Q-{cid} is claimed by {_holder_label(session, before.claimed_by_id)}; "
                                "only they or an admin can release it")
        _audit(session, cid, me, "unclaim", _holder_label(session, holder), "")
        return before


def reassign(ctx: Context, cid: int, admin_id: int, to_reviewer_id: int) -> Consultation:
    """Admin only: hand consultation ``cid`` to another active reviewer."""
    with ctx.db.session() as session:
        admin = _reviewer(session, admin_id)
        if admin.role != ReviewerRole.ADMIN:
            raise ClaimError("only an admin can reassign a consultation")
        target = _reviewer(session, to_reviewer_id)
        consultation = session.get(Consultation, cid)
        if consultation is None:
            raise ClaimError(f"consultation Q-{cid} does not exist")
        if consultation.state not in {s.value for s in CLAIMABLE_STATES}:
            raise ClaimError(f"Q-{cid} is {consultation.state.replace('_', ' ')} and cannot be assigned")
        before = _holder_label(session, consultation.claimed_by_id)
        session.exec(update(Consultation).where(Consultation.id == cid)
                     .values(claimed_by_id=target.id, claimed_at=utcnow()))
        session.refresh(consultation)
        _audit(session, cid, admin, "reassign", before, f"{target.name} <{target.email}>")
        return consultation
