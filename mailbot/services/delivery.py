"""Outbound delivery: queue a message durably, then send it exactly once.

:func:`queue_message` stores the finished message -- Message-ID included --
in the caller's transaction, so the decision to reply and the reply itself
commit together.  :func:`deliver` is what the ``send_outbound`` actor runs:
it does nothing for a message that is no longer pending, marks it sent with
a conditional update, raises :class:`RetryLater` on a temporary failure and
records a permanent failure (5xx) where reviewers see it.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import or_, update
from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.mail.send import DeliveryError, as_bytes
from mailbot.models import OutboundMessage, OutboundState, utcnow
from mailbot.services.quarantine import quarantine


class RetryLater(Exception):
    """A temporary delivery failure; the caller should try again later."""


def queue_message(session: Session, message: EmailMessage, *, kind: str,
                  consultation_id: int | None = None, inbound_id: int | None = None,
                  raw: bytes | None = None) -> OutboundMessage:
    """Store ``message`` as pending in the caller's transaction; returns the row
    (its id is what the send actor takes).  ``raw``: its wire bytes when the
    caller assembled them already (``compose.build_bytes``; then ``message``
    only supplies the headers)."""
    to_addr = message["To"].addresses[0].addr_spec if message["To"] else ""
    from_addr = message["From"].addresses[0].addr_spec if message["From"] else ""
    row = OutboundMessage(
        kind=kind, consultation_id=consultation_id, inbound_id=inbound_id,
        to_addr=to_addr, from_addr=from_addr, subject=str(message["Subject"] or ""),
        message_id=str(message["Message-ID"]), raw=raw if raw is not None else as_bytes(message),
    )
    session.add(row)
    session.flush()
    return row


def bounce_address(ctx: Context) -> str:
    """Envelope sender for everything we send: bounces come back to a
    service address the router recognises, never to a person."""
    return f"bounces@{ctx.settings.service.domain}"


def deliver(ctx: Context, outbound_id: int) -> str:
    """Send one pending message.  Returns ``"sent"``, ``"skipped"`` (not
    pending: already sent, failed, or unknown) or ``"failed"`` (permanent);
    raises :class:`RetryLater` for a temporary failure."""
    with ctx.db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is None or row.state != OutboundState.PENDING:
            return "skipped"
        row.attempts += 1
        raw, to_addr = row.raw, row.to_addr
    try:
        ctx.sender.send(raw, envelope_from=bounce_address(ctx), recipients=[to_addr])
    except DeliveryError as exc:
        return _record_failure(ctx, outbound_id, exc)
    with ctx.db.session() as session:
        session.exec(
            update(OutboundMessage)
            .where(OutboundMessage.id == outbound_id, OutboundMessage.state == OutboundState.PENDING)
            .values(state=OutboundState.SENT, sent_at=utcnow(), transport=ctx.sender.name, last_error="")
        )
    return "sent"


def _record_failure(ctx: Context, outbound_id: int, exc: DeliveryError) -> str:
    max_attempts = ctx.settings.relay.max_attempts
    with ctx.db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        row.last_error = str(exc)[:2000]
        if exc.permanent or row.attempts >= max_attempts:
            row.state = OutboundState.FAILED
            quarantine(session, kind="outbound", ref_id=outbound_id, stage="delivery",
                       reason=("permanent delivery failure: " if exc.permanent else "gave up after retries: ") + str(exc))
            return "failed"
        row.next_attempt_at = utcnow() + timedelta(seconds=min(3600, 5 * 2 ** row.attempts))
    raise RetryLater(str(exc))


def mark_failed_after_retries(ctx: Context, outbound_id: int, reason: str) -> None:
    """Called when the queue gives up on a message: make the failure visible."""
    with ctx.db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is None or row.state != OutboundState.PENDING:
            return
        row.state = OutboundState.FAILED
        row.last_error = reason[:2000]
        quarantine(session, kind="outbound", ref_id=outbound_id, stage="delivery", reason=reason)


# Sent marks per commit in :func:`deliver_batch`.  The mark is what stops a
# retry from sending again, so a worker killed mid-batch re-sends at most the
# messages of the open chunk (one message with :func:`deliver`); a commit per
# message would cost an fsync each, the price of a digest run.
MARK_EVERY = 20


def deliver_batch(ctx: Context, outbound_ids: list[int]) -> list[int]:
    """Send the pending messages among ``outbound_ids`` over one relay
    session, marking them sent with conditional updates committed every
    :data:`MARK_EVERY` messages.  Returns the ids that failed for now (the
    caller hands each to the one-message path, which retries with backoff);
    permanent failures are recorded as :func:`deliver` records them."""
    now = utcnow()
    with ctx.db.session() as session:
        rows = session.exec(
            select(OutboundMessage.id, OutboundMessage.raw, OutboundMessage.to_addr)
            .where(OutboundMessage.id.in_(outbound_ids), OutboundMessage.state == OutboundState.PENDING,
                   or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now))
            .order_by(OutboundMessage.id)
        ).all()
        if rows:
            session.exec(update(OutboundMessage).where(OutboundMessage.id.in_([r[0] for r in rows]))
                         .values(attempts=OutboundMessage.attempts + 1))
    retry: list[int] = []
    sent: list[int] = []
    sender = ctx.sender
    envelope_from = bounce_address(ctx)
    try:
        with _session_of(sender) as conn:
            for outbound_id, raw, to_addr in rows:
                try:
                    conn.send(raw, envelope_from=envelope_from, recipients=[to_addr])
                except DeliveryError as exc:
                    _mark_sent(ctx, sent)
                    try:
                        _record_failure(ctx, outbound_id, exc)
                    except RetryLater:
                        retry.append(outbound_id)
                    continue
                sent.append(outbound_id)
                if len(sent) >= MARK_EVERY:
                    _mark_sent(ctx, sent)
    finally:
        _mark_sent(ctx, sent)
    return retry


def _session_of(sender):
    connection = getattr(sender, "connection", None)
    return connection() if connection is not None else nullcontext(sender)


def _mark_sent(ctx: Context, sent: list[int]) -> None:
    """Mark (and forget) the ids in ``sent``: one conditional update, one commit."""
    if not sent:
        return
    with ctx.db.session() as session:
        session.exec(
            update(OutboundMessage)
            .where(OutboundMessage.id.in_(sent), OutboundMessage.state == OutboundState.PENDING)
            .values(state=OutboundState.SENT, sent_at=utcnow(), transport=ctx.sender.name, last_error="")
        )
    sent.clear()
