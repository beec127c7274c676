"""Outbound delivery: queue a message durably, then send it exactly once.

:func:`queue_message` stores the finished message -- Message-ID included --
in the caller's transaction, so the decision to reply and the reply itself
commit together.  :func:`deliver` is what the ``send_outbound`` actor runs:
it does nothing for a message that is no longer pending, marks it sent with
a conditional update, raises :class:`RetryLater` on a temporary failure and
records a permanent failure (5xx) where reviewers see it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import update
from sqlmodel import Session

from mailbot.config import Settings
from mailbot.context import Context
from mailbot.mail.addresses import BOUNCES, classify
from mailbot.mail.send import DeliveryError, as_bytes
from mailbot.models import OutboundMessage, OutboundState, utcnow
from mailbot.services.quarantine import quarantine


_VERP_TAG = re.compile(r"(\d{1,12})-([0-9a-f]{12})")


class RetryLater(Exception):
    """A temporary delivery failure; the caller should try again later."""


def queue_message(session: Session, message: EmailMessage, *, kind: str,
                  consultation_id: int | None = None, inbound_id: int | None = None) -> OutboundMessage:
    """Store ``message`` as pending in the caller's transaction; returns the row
    (its id is what the send actor takes)."""
    to_addr = message["To"].addresses[0].addr_spec if message["To"] else ""
    from_addr = message["From"].addresses[0].addr_spec if message["From"] else ""
    row = OutboundMessage(
        kind=kind, consultation_id=consultation_id, inbound_id=inbound_id,
        to_addr=to_addr, from_addr=from_addr, subject=str(message["Subject"] or ""),
        message_id=str(message["Message-ID"]), raw=as_bytes(message),
    )
    session.add(row)
    session.flush()
    return row


def bounce_address(ctx: Context) -> str:
    """The plain bounce address (what VERP addresses are built on)."""
    return f"bounces@{ctx.settings.service.domain}"


def verp_address(settings: Settings, outbound_id: int, message_id: str) -> str:
    """Envelope sender of one outgoing message (VERP): ``bounces+<id>-<tag>@``.

    Bounces come back to a service address the router recognises, never to a
    person, and name the exact message that bounced.  The tag is derived from
    the message's random Message-ID, which only its recipient ever sees: a
    third party cannot forge a bounce that matches mail we sent."""
    return f"{BOUNCES}+{outbound_id}-{_verp_tag(message_id)}@{settings.service.domain}"


def verp_outbound(session: Session, settings: Settings, address: str) -> OutboundMessage | None:
    """The outbound message a VERP bounce address names, when its tag is right."""
    service = classify(settings, address)
    if service is None or service.kind != BOUNCES:
        return None
    match = _VERP_TAG.fullmatch(service.tag.lower())
    if match is None:
        return None
    row = session.get(OutboundMessage, int(match.group(1)))
    if row is None or not hmac.compare_digest(_verp_tag(row.message_id), match.group(2)):
        return None
    return row


def _verp_tag(message_id: str) -> str:
    return hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:12]


def deliver(ctx: Context, outbound_id: int) -> str:
    """Send one pending message.  Returns ``"sent"``, ``"skipped"`` (not
    pending: already sent, failed, or unknown) or ``"failed"`` (permanent);
    raises :class:`RetryLater` for a temporary failure."""
    with ctx.db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is None or row.state != OutboundState.PENDING:
            return "skipped"
        row.attempts += 1
        raw, to_addr, envelope_from = row.raw, row.to_addr, verp_address(ctx.settings, row.id, row.message_id)
    try:
        ctx.sender.send(raw, envelope_from=envelope_from, recipients=[to_addr])
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
