"""Processing one stored inbound message: parse, route, act, mark -- once.

:func:`process` is what the ``process_inbound`` actor runs (through
:func:`route_stored`, which also hands back the routed row and the parsed
request).  It is safe to run twice: the row is moved out of ``received``
with a conditional update in the same transaction as everything the routing
decided (a consultation opened, bounce rows written ...), so a second run
finds nothing to do, and one racing the first loses at that update and
rolls back.  Failures are explicit:

- a message that cannot be parsed is quarantined with the reason
  (permanent: retrying will not change the bytes);
- a database that is unreachable raises (transient: the actor retries);
- any other error while routing is a bug-shaped input: quarantined with the
  error, so the message is never silently lost and can be replayed after a fix;
- a message over one of ``mail.limits``' bounds is quarantined before the
  parser sees it (stored by IMAP, or before the bounds existed);
- every run first counts an attempt in its own committed transaction, so a
  message whose processing killed the process (out of memory, a hang the
  worker's time limit ended) is quarantined after
  :data:`MAX_PROCESSING_ATTEMPTS` starts instead of crash-looping after
  every restart (issue 17, point 3).

:func:`replay` puts a quarantined message back to ``received``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import bindparam, delete, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.mail import guards, limits
from mailbot.mail.addresses import BOUNCES, classify, primary
from mailbot.mail.parse import ParseError, ParsedMessage, parse
from mailbot.mail.routing import Action, Decision, Mail, route
from mailbot.models import (
    Attachment,
    AuditEvent,
    BounceEvent,
    InboundMessage,
    InboundRow,
    InboundStatus,
    OutboundMessage,
    QuarantineItem,
    utcnow,
)
from mailbot.services import Poke, threads
from mailbot.services.delivery import verp_outbound
from mailbot.services.quarantine import quarantine

log = logging.getLogger(__name__)

QUARANTINE_KINDS = ("inbound", "process_inbound")
# Starts of processing one message may make before it is quarantined: one
# crash can be bad luck (a deploy, the OOM killer aimed at a neighbour);
# three in a row is the message.
MAX_PROCESSING_ATTEMPTS = 3


class _Lost(Exception):
    """Another worker processed the row first; roll back quietly."""


@dataclass
class Routed:
    """What routing one stored message left: the pokes to send, and -- when it
    was routed -- the row as committed and the parsed request, so the caller
    can answer a command without reading or parsing them again."""

    pokes: list[Poke] = field(default_factory=list)
    inbound: InboundRow | None = None
    message: EmailMessage | None = None


def process(ctx: Context, inbound_id: int) -> list[Poke]:
    """Route inbound message ``inbound_id``; returns the pokes to send."""
    return route_stored(ctx, inbound_id).pokes


def route_stored(ctx: Context, inbound_id: int) -> Routed:
    """:func:`process`, also returning the routed row and parsed request."""
    row = _start_attempt(ctx, inbound_id)
    if row is None:
        return Routed()
    if row.attempts > MAX_PROCESSING_ATTEMPTS:
        _quarantine(ctx, inbound_id, stage="processing",
                    reason=f"processing this message did not finish {row.attempts - 1} times "
                           "(the process died or was stopped while handling it); kept for an operator")
        return Routed()
    over = limits.check(row.raw)
    if over is not None:
        _quarantine(ctx, inbound_id, stage="parse", reason=f"cannot parse: {over}")
        return Routed()
    guard = ctx.settings.guards
    to_bounces = any((a := classify(ctx.settings, str(t))) is not None and a.kind == BOUNCES
                     for t in row.envelope_to)
    try:
        parsed = parse(row.raw, envelope_from=row.envelope_from, domain=ctx.settings.service.domain,
                       max_attachment_size=guard.max_attachment_size, max_attachments=guard.max_attachments,
                       to_bounce_address=to_bounces)
    except ParseError as exc:
        _quarantine(ctx, inbound_id, stage="parse", reason=f"cannot parse: {exc}")
        return Routed()
    except Exception as exc:  # a parser bug on hostile bytes: retrying cannot help
        log.exception("parsing inbound %s failed", inbound_id)
        _quarantine(ctx, inbound_id, stage="parse", reason=f"parser failed: {exc!r}"[:2000])
        return Routed()
    try:
        with ctx.db.session() as session:
            pokes = _route_and_act(ctx, session, row, parsed)
        return Routed(pokes, row, parsed.message)
    except _Lost:
        return Routed()
    except (OperationalError, DBAPIError) as exc:
        if getattr(exc, "connection_invalidated", False) or isinstance(exc, OperationalError):
            raise  # transient: the database went away; the actor retries
        _quarantine(ctx, inbound_id, stage="routing", reason=f"routing failed: {exc!r}"[:2000])
        return Routed()
    except Exception as exc:
        log.exception("routing inbound %s failed", inbound_id)
        _quarantine(ctx, inbound_id, stage="routing", reason=f"routing failed: {exc!r}"[:2000])
        return Routed()


# The hot path's statements, built once (issue 16: building an ORM statement
# costs ~0.3 ms of CPU per execution, running a prebuilt one ~0.04 ms).
_INBOUND = InboundMessage.__table__
# One more attempt at a ``received`` row, and the row itself.
_COUNT_ATTEMPT = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("inbound_id"), _INBOUND.c.status == InboundStatus.RECEIVED)
    .values(attempts=_INBOUND.c.attempts + 1)
    .returning(*_INBOUND.c)
)
# What parsing and routing found, written only if the row is still ``received``:
# the condition is what makes a second worker on the same row lose (it rolls back).
_ROUTED_FIELDS = ("message_id", "in_reply_to", "references", "from_addr", "from_name", "reply_to", "subject",
                  "text", "full_text", "html", "codes", "status", "action", "route", "auto_reply_ok",
                  "consultation_id", "processed_at", "error")
_FINISH_ROUTING = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("inbound_id"), _INBOUND.c.status == InboundStatus.RECEIVED)
    .values({name: bindparam(f"new_{name}") for name in _ROUTED_FIELDS})
)
_DELETE_ATTACHMENTS = delete(Attachment.__table__).where(Attachment.__table__.c.inbound_id == bindparam("inbound_id"))


def _start_attempt(ctx: Context, inbound_id: int) -> InboundRow | None:
    """Count one more attempt at a ``received`` row, committed before any
    work; returns the row (its ``attempts`` counts this one), or ``None``
    when there is nothing to do.  One statement: the count and the read."""
    with ctx.db.begin() as conn:
        found = conn.execute(_COUNT_ATTEMPT, {"inbound_id": inbound_id}).first()
    return InboundRow.from_mapping(found._mapping) if found is not None else None


def _route_and_act(ctx: Context, session: Session, row: InboundRow, parsed: ParsedMessage) -> list[Poke]:
    """Route ``row`` and carry out the decision in the caller's transaction.

    The row is not read again or locked first: the closing conditional
    update moves it out of ``received`` together with what routing found,
    and a worker that finds it moved already (another one routed it) rolls
    back everything it did here (:class:`_Lost`)."""
    _fill(row, parsed)
    _store_attachments(session, row.id, parsed)
    mail = Mail(settings=ctx.settings, session=session, inbound=row, parsed=parsed,
                recipient=primary(ctx.settings, list(row.envelope_to) + parsed.to + parsed.cc))
    decision = route(mail)
    status, pokes = ACTIONS[decision.action](session, mail, decision)
    session.flush()  # rows the action added (a consultation, bounce events, attachments)
    row.status, row.action, row.route = status, _action_name(decision), mail.route
    row.auto_reply_ok, row.processed_at, row.error = mail.auto_reply_ok, utcnow(), ""
    done = session.connection().execute(
        _FINISH_ROUTING, {"inbound_id": row.id, **{f"new_{name}": getattr(row, name) for name in _ROUTED_FIELDS}})
    if done.rowcount != 1:
        raise _Lost()
    return pokes


def _fill(row: InboundRow, parsed: ParsedMessage) -> None:
    row.message_id = parsed.message_id[:998]
    row.in_reply_to = parsed.in_reply_to[:998]
    row.references = parsed.references
    row.from_addr = (parsed.from_addr or parsed.envelope_from.strip("<>"))[:512]
    row.from_name = parsed.from_name[:512]
    row.reply_to = parsed.reply_to[:512]
    row.subject = parsed.subject[:2000]
    row.text = parsed.text
    row.full_text = parsed.full_text
    row.html = parsed.html
    row.codes = parsed.codes


def _store_attachments(session: Session, inbound_id: int, parsed: ParsedMessage) -> None:
    if not parsed.attachments:
        return   # nothing to store; :func:`replay` removed what an earlier run stored
    # rows an earlier run stored (a message replayed before replay removed them)
    session.connection().execute(_DELETE_ATTACHMENTS, {"inbound_id": inbound_id})
    for att in parsed.attachments:
        session.add(Attachment(inbound_id=inbound_id, filename=att.filename, content_type=att.content_type,
                               size=att.size, sha256=att.sha256, data=att.data, truncated=att.truncated))


def _action_name(decision: Decision) -> str:
    return {Action.DROP: decision.rule, Action.QUARANTINE: "quarantined"}.get(decision.action, str(decision.action))


# -- actions: what each kind of decision does ----------------------------------

Outcome = tuple[str, list[Poke]]


def _drop(session: Session, mail: Mail, decision: Decision) -> Outcome:
    return InboundStatus.DROPPED, []


def _bounce(session: Session, mail: Mail, decision: Decision) -> Outcome:
    """Record the bounce of a message we sent -- only of one we sent.

    The bounced message is found by its VERP return path (``bounces+<id>-
    <tag>@``, see ``services.delivery``) or by the Message-ID the DSN carries
    back.  A DSN that matches no mail of ours is recorded as such and counts
    for nothing (anyone can write a DSN naming any address), and a DSN yields
    at most one event -- for the address that message was sent to -- however
    many times it lists it."""
    route = mail.route[-1]
    outbound, via = _bounced_outbound(session, mail)
    if outbound is None:
        route.update(recipients=0, matched="no mail we sent")
        return InboundStatus.PROCESSED, []
    reports = guards.dsn_reports(mail.parsed.message)
    to_addr = outbound.to_addr.lower()
    report = next((r for r in reports if r.recipient == to_addr), None)
    if report is None and via == "verp":
        # The return path proves which message bounced; the text may name the
        # recipient differently (a forward, an alias) or not at all.
        first = reports[0] if reports else guards.DsnReport(recipient=to_addr)
        report = guards.DsnReport(recipient=to_addr, action=first.action, status=first.status,
                                  diagnostic=first.diagnostic)
    route.update(matched=f"outbound #{outbound.id} ({via})", outbound_id=outbound.id)
    _note_bounced_outbound(session, mail, outbound, report)
    if report is None:
        route["recipients"] = 0
        return InboundStatus.PROCESSED, []
    event = BounceEvent(inbound_id=mail.inbound.id, outbound_id=outbound.id, recipient=to_addr[:512],
                        action=report.action[:32], status=report.status[:32], diagnostic=report.diagnostic,
                        permanent=report.permanent)
    session.add(event)
    session.flush()
    route["recipients"] = 1
    return InboundStatus.PROCESSED, [Poke("bounce_recorded", event.id)]


def _bounced_outbound(session: Session, mail: Mail) -> tuple[OutboundMessage | None, str]:
    for address in mail.inbound.envelope_to or []:
        found = verp_outbound(session, mail.settings, str(address))
        if found is not None:
            return found, "verp"
    message_id = guards.returned_message_id(mail.parsed.message)
    if message_id:
        found = session.exec(select(OutboundMessage).where(OutboundMessage.message_id == message_id)).first()
        if found is not None:
            return found, "message-id"
    return None, ""


def _note_bounced_outbound(session: Session, mail: Mail, outbound: OutboundMessage,
                           report: guards.DsnReport | None) -> None:
    """Say on the bounced message, and for a consultation's mail in its audit
    trail, that it bounced (reviewers see that the asker never got the answer)."""
    summary = (f"{report.action} {report.status} {report.diagnostic}".strip() if report else "bounced")[:2000]
    outbound.last_error = f"bounce: {summary}"[:2000]
    session.add(outbound)
    if outbound.consultation_id is not None:
        session.add(AuditEvent(
            consultation_id=outbound.consultation_id, actor="system", action="delivery_failed",
            after=summary, detail={"outbound_id": outbound.id, "kind": outbound.kind, "to": outbound.to_addr,
                                   "permanent": bool(report and report.permanent), "inbound_id": mail.inbound.id},
        ))


def _quarantine_action(session: Session, mail: Mail, decision: Decision) -> Outcome:
    quarantine(session, kind="inbound", ref_id=mail.inbound.id, stage="routing",
               reason=f"{decision.rule}: {decision.reason}")
    return InboundStatus.QUARANTINED, []


def _followup(session: Session, mail: Mail, decision: Decision) -> Outcome:
    threads.attach(session, mail.consultation.id, mail.inbound, mail.parsed)
    mail.inbound.consultation_id = mail.consultation.id
    return InboundStatus.PROCESSED, [Poke("consultation_followup", mail.inbound.id)]


def _command(session: Session, mail: Mail, decision: Decision) -> Outcome:
    return InboundStatus.PROCESSED, [Poke("run_command", mail.inbound.id)]


def _consult(session: Session, mail: Mail, decision: Decision) -> Outcome:
    consultation = threads.open_consultation(session, mail.inbound, mail.parsed)
    mail.inbound.consultation_id = consultation.id
    return InboundStatus.PROCESSED, [Poke("advance_consultation", consultation.id)]


ACTIONS: dict[Action, Callable[[Session, Mail, Decision], Outcome]] = {
    Action.DROP: _drop,
    Action.BOUNCE: _bounce,
    Action.QUARANTINE: _quarantine_action,
    Action.FOLLOWUP: _followup,
    Action.COMMAND: _command,
    Action.CONSULT: _consult,
}


# -- quarantine and replay -----------------------------------------------------

def _quarantine(ctx: Context, inbound_id: int, *, stage: str, reason: str) -> None:
    with ctx.db.session() as session:
        moved = session.exec(
            update(InboundMessage)
            .where(InboundMessage.id == inbound_id, InboundMessage.status == InboundStatus.RECEIVED)
            .values(status=InboundStatus.QUARANTINED, error=reason[:2000], action="quarantined",
                    auto_reply_ok=False, processed_at=utcnow())
        )
        if moved.rowcount:
            quarantine(session, kind="inbound", ref_id=inbound_id, stage=stage, reason=reason)


def replay(ctx: Context, quarantine_id: int, *, by: str = "operator") -> list[Poke]:
    """Put the quarantined inbound message back to ``received`` and resolve
    the quarantine item; returns the poke that processes it again.  Raises
    ``LookupError`` for an unknown or non-inbound item, ``ValueError`` when
    it was already resolved."""
    with ctx.db.session() as session:
        item = session.get(QuarantineItem, quarantine_id)
        if item is None or item.kind not in QUARANTINE_KINDS or item.ref_id is None:
            raise LookupError(f"quarantine item {quarantine_id} is not an inbound message")
        if item.resolved_at is not None:
            raise ValueError(f"quarantine item {quarantine_id} was already resolved by {item.resolved_by or '?'}")
        row = session.get(InboundMessage, item.ref_id)
        if row is None:
            raise LookupError(f"inbound message {item.ref_id} no longer exists")
        session.exec(
            update(InboundMessage).where(InboundMessage.id == row.id)
            .values(status=InboundStatus.RECEIVED, error="", route=[], action="", consultation_id=None, attempts=0,
                    processed_at=None, auto_reply_ok=True)
        )
        # routing stores the attachments it finds again (and deletes nothing when it finds none)
        session.connection().execute(_DELETE_ATTACHMENTS, {"inbound_id": row.id})
        item.resolved_at = utcnow()
        item.resolved_by = by[:512]
        session.add(item)
        return [Poke("process_inbound", row.id)]


def quarantined(ctx: Context, limit: int = 100) -> list[QuarantineItem]:
    """Unresolved quarantine items for inbound mail, newest first."""
    with ctx.db.read() as session:
        return list(session.exec(
            select(QuarantineItem).where(QuarantineItem.kind.in_(QUARANTINE_KINDS),
                                         QuarantineItem.resolved_at.is_(None))
            .order_by(QuarantineItem.id.desc()).limit(limit)
        ).all())
