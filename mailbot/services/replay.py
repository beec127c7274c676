"""Putting quarantined work back in line, from the admin pages.

A quarantine row says what failed (``kind``: ``inbound``, ``outbound`` or the
name of the actor the queue gave up on) and which row (``ref_id``).  Replay
resolves the row and returns the poke that retries the work; inbound mail is
replayed by the inbound service (``mailbot.services.inbound.replay``) so
that routing starts again from the stored raw bytes.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session

from mailbot.context import Context
from mailbot.models import OutboundMessage, OutboundState, QuarantineItem, utcnow
from mailbot.services import Poke


class ReplayError(ValueError):
    """The item cannot be replayed (user-facing message)."""


def _open_item(session: Session, qid: int) -> QuarantineItem:
    item = session.get(QuarantineItem, qid)
    if item is None:
        raise ReplayError(f"quarantine item {qid} does not exist")
    if item.resolved_at is not None:
        raise ReplayError(f"quarantine item {qid} was already resolved by {item.resolved_by or 'someone'}")
    return item


def resolve(ctx: Context, qid: int, actor: str) -> None:
    """Mark an item handled without retrying it."""
    with ctx.db.session() as session:
        item = _open_item(session, qid)
        item.resolved_at, item.resolved_by = utcnow(), actor
        session.add(item)


def replay(ctx: Context, qid: int, actor: str) -> list[Poke]:
    """Retry the quarantined work; returns the pokes to dispatch."""
    with ctx.db.read() as session:
        item = _open_item(session, qid)
        kind, ref_id = item.kind, item.ref_id
    if ref_id is None:
        raise ReplayError(f"quarantine item {qid} does not point at anything to retry; resolve it instead")
    from mailbot.services import inbound

    if kind in inbound.QUARANTINE_KINDS:
        try:
            return list(inbound.replay(ctx, qid, by=actor))   # resolves the item itself
        except (LookupError, ValueError) as exc:
            raise ReplayError(str(exc)) from None
    if kind in ("outbound", "send_outbound"):
        return retry_outbound(ctx, ref_id, actor, qid=qid)
    # The queue gave up on an actor: its rows are still in the database, so poking it again is safe.
    _mark(ctx, qid, actor)
    return [Poke(kind, ref_id)]


def retry_outbound(ctx: Context, outbound_id: int, actor: str, *, qid: int | None = None) -> list[Poke]:
    """Put a failed outbound message back to pending (attempts reset)."""
    with ctx.db.session() as session:
        result = session.exec(
            update(OutboundMessage)
            .where(OutboundMessage.id == outbound_id, OutboundMessage.state == OutboundState.FAILED)
            .values(state=OutboundState.PENDING, attempts=0, next_attempt_at=None)
        )
        if result.rowcount == 0:
            row = session.get(OutboundMessage, outbound_id)
            if row is None:
                raise ReplayError(f"outbound message {outbound_id} does not exist")
            if row.state != OutboundState.PENDING:
                raise ReplayError(f"outbound message {outbound_id} is {row.state}, not failed")
        if qid is not None:
            item = session.get(QuarantineItem, qid)
            item.resolved_at, item.resolved_by = utcnow(), actor
    return [Poke("send_outbound", outbound_id)]


def _mark(ctx: Context, qid: int, actor: str) -> None:
    with ctx.db.session() as session:
        session.exec(update(QuarantineItem).where(QuarantineItem.id == qid, QuarantineItem.resolved_at.is_(None))
                     .values(resolved_at=utcnow(), resolved_by=actor))
