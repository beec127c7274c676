"""Answer one mail command: parse, run the handler, queue exactly one reply.

:func:`run` is what the ``run_command`` actor calls with an inbound id the
router marked as a command.  It

1. returns early if a reply for this inbound message already exists (a rerun),
   or if no automatic answer is allowed (the router's ``auto_reply_ok``, a
   bounce, an auto-reply -- checked again here, since a reply to an
   auto-responder is how mail loops start) -- except that a command in
   :data:`ALWAYS_CARRIED_OUT` (UNSUBSCRIBE) is still carried out, silently;
2. answers the daily-cap notice instead of the command when the router said
   this message is the one that reached the cap;
3. finds the command (:func:`mailbot.commands.parse_command`) and runs its
   handler from :data:`mailbot.commands.HANDLERS`; an empty or unknown command
   gets HELP, a request we cannot serve gets a ``command-error`` reply that
   says why and shows examples;
4. renders ``templates/email/<name>/``, threads it with the request, and
   queues it with :func:`mailbot.services.delivery.queue_message`, recording
   the outcome in the inbound message's ``route`` -- the queueing and the
   record in one write transaction.

Steps 1-4 run in a read-only session for the read-only verbs (LOOKUP,
SEARCH, CHECK, HELP), so only the short final write takes the database's
write lock; handlers that write (the job-board commands) run inside the
write transaction, so their changes and the reply commit together.

The reply's Message-ID is derived from the inbound message, and Message-IDs
are unique in ``outbound_message``: two workers racing on the same inbound
cannot both commit a reply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

from sqlalchemy import bindparam, exists, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from mailbot.commands import HANDLERS, Command, Reply, parse_command
from mailbot.commands.arguments import CommandError, shorten
from mailbot.context import Context
from mailbot.mail.compose import ComposeError, Envelope, build_bytes, clean_header, render
from mailbot.mail.limits import header_block
from mailbot.mail.parse import header
from mailbot.mail.mailpolicy import POLICY
from mailbot.mail.addresses import ServiceAddress, classify
from mailbot.mail.reflect import inert_subject, reflected
from mailbot.mail.routing import cap_verdict, verified_sender
from mailbot.models import InboundMessage, InboundRow, InboundStatus, OutboundMessage, QuarantineItem, utcnow
from mailbot.services import Poke
from mailbot.services.delivery import queue_reply
from mailbot.services.quarantine import quarantine

log = logging.getLogger(__name__)

STAGE = "run_command"
# A command left unanswered longer than this is not worth answering late.
RECOVERY_WINDOW = timedelta(days=2)


# Verbs whose handlers only read: they run outside the write transaction, so
# a slow answer (the first SEARCH builds the search index) never holds the
# SQLite write lock that the SMTP listener needs to store mail.
READ_ONLY_VERBS = frozenset({"LOOKUP", "SEARCH", "CHECK", "HELP"})


@dataclass
class _Plan:
    """What to do, decided in a read-only session."""

    inbound: InboundRow                      # the row as read (or as the router committed it)
    silence: str = ""                        # why no reply, when none is due
    command: Command | None = None
    message: EmailMessage | None = None      # built already (read-only handlers): its headers
    raw: bytes | None = None                 # ... and its wire bytes
    reply: Reply | None = None
    deferred: bool = False                   # the handler writes: run it in the write transaction
    failure: str = ""                        # the reply cannot be written (permanent): quarantine


# Commands whose effect is owed even when no reply may be sent (over the
# daily cap, from an auto-submitted sender): stopping mail must always work.
ALWAYS_CARRIED_OUT = frozenset({"UNSUBSCRIBE"})

# A stored message: the ORM row, or its plain copy on the hot path (issue 16).
Inbound = InboundMessage | InboundRow

# The hot path's statements, built once (issue 16).
_INBOUND = InboundMessage.__table__
_READ_INBOUND = select(_INBOUND).where(_INBOUND.c.id == bindparam("inbound_id"))
_SET_ROUTE = update(_INBOUND).where(_INBOUND.c.id == bindparam("inbound_id")).values(route=bindparam("new_route"))
_ANSWERED = select(OutboundMessage.__table__.c.id).where(
    OutboundMessage.__table__.c.inbound_id == bindparam("inbound_id")).limit(1)


def run(ctx: Context, inbound_id: int, *, routed: InboundRow | None = None,
        request: Message | None = None, claim: bool = False) -> list[Poke]:
    """Answer the command in inbound message ``inbound_id``; returns the
    ``send_outbound`` poke for the queued reply, or nothing (already answered,
    or no automatic answer allowed).  Safe to call any number of times.

    ``routed`` and ``request``: the row as the router has just committed it
    and the request it parsed (``services.inbound.route_stored``), so that
    answering reads and parses neither again; without them both are read.
    ``claim``: the caller sends the reply as soon as this returns
    (``delivery.deliver(..., claimed=True)``): it is queued with its first
    attempt claimed, which saves the send a write transaction."""
    with ctx.db.read() as session:
        plan = _plan(ctx, session, inbound_id, routed, request)
    if plan is None:
        return []
    try:
        with ctx.db.session() as session:
            outbound_id = _commit(ctx, session, plan, claim)
    except IntegrityError:
        # Another worker committed the reply first (same derived Message-ID).
        log.info("inbound %s: reply already queued by another worker", inbound_id)
        return []
    return [Poke("send_outbound", outbound_id)] if outbound_id else []


def _plan(ctx: Context, session: Session, inbound_id: int, routed: InboundRow | None,
          request: Message | None) -> _Plan | None:
    if routed is not None:
        inbound = routed  # answered already only after a replay: the write transaction checks
    else:
        found = session.connection().execute(_READ_INBOUND, {"inbound_id": inbound_id}).first()
        if found is None or _already_answered(session.connection(), inbound_id):
            return None
        inbound = InboundRow.from_mapping(found._mapping)
    cap = cap_verdict(inbound)
    reason = silence_reason(inbound, cap, request)
    if reason is None and not (inbound.reply_to or inbound.from_addr):
        reason = "no address to reply to"
    if reason is None and classify(ctx.settings, inbound.reply_to or inbound.from_addr) is not None:
        reason = "the reply would go to our own address"
    address = recipient(ctx, inbound)
    command = parse_command(inbound.subject, inbound.text, address.kind if address else "")
    if reason is not None:
        if command is not None and command.verb in ALWAYS_CARRIED_OUT and command.verb in HANDLERS:
            return _Plan(inbound, silence=reason, command=command, deferred=True)
        return _Plan(inbound, silence=reason)
    if cap == "notice":
        reply = Reply("cap-notice", {"cap": ctx.settings.guards.daily_reply_cap}, kind="cap-notice")
    elif command is not None and command.verb in HANDLERS and command.verb not in READ_ONLY_VERBS:
        return _Plan(inbound, command=command, deferred=True)
    else:
        reply = _dispatch(ctx, session, inbound, command)
    if reply is None:
        return _Plan(inbound, command=command)
    try:
        message, raw = _message(ctx, inbound, command, reply)
    except ComposeError as exc:
        return _Plan(inbound, command=command, failure=f"the reply cannot be written: {exc}")
    return _Plan(inbound, command=command, reply=reply, message=message, raw=raw)


def _commit(ctx: Context, session: Session, plan: _Plan, claim: bool = False) -> int | None:
    """In the write transaction: queue the reply and record the outcome
    (prebuilt statements on the session's connection; the ORM session is
    there for the handlers that write and for a quarantine row)."""
    conn = session.connection()
    inbound = plan.inbound
    if _already_answered(conn, inbound.id):
        return None
    if plan.silence and not plan.deferred:
        _record(conn, inbound, {"result": "not answered", "reason": plan.silence})
        return None
    if plan.failure:
        return _failed(session, inbound, plan.failure)
    reply, message, raw = plan.reply, plan.message, plan.raw
    verb = plan.command.verb if plan.command else ""
    if plan.deferred:
        reply = _dispatch(ctx, session, inbound, plan.command)
        if plan.silence:
            _record(conn, inbound, {"result": "carried out, not answered", "verb": verb, "reason": plan.silence})
            return None
        try:
            message, raw = _message(ctx, inbound, plan.command, reply) if reply is not None else (None, None)
        except ComposeError as exc:
            return _failed(session, inbound, f"the reply cannot be written: {exc}")
    if reply is None or message is None:
        _record(conn, inbound, {"result": "no reply", "verb": verb})
        return None
    outbound_id = queue_reply(conn, message, raw, kind=reply.kind, inbound_id=inbound.id, claimed=claim)
    _record(conn, inbound, {"result": "replied", "verb": verb, "template": reply.template,
                            "outbound_id": outbound_id})
    return outbound_id


def _failed(session: Session, inbound: InboundRow, reason: str) -> None:
    """A permanent failure: recorded and quarantined (visible on the admin
    quarantine page), never retried by the queue or the reconciler."""
    _record(session.connection(), inbound, {"result": "not answered", "reason": reason})
    quarantine(session, kind=STAGE, ref_id=inbound.id, stage="compose", reason=reason)
    return None


def _message(ctx: Context, inbound: Inbound, command: Command | None,
             reply: Reply) -> tuple[EmailMessage, bytes]:
    """Render the reply's templates and thread it with the request: the
    header-only message and the wire bytes (``compose.build_bytes``)."""
    return build_bytes(
        render(reply.template, _context(ctx, inbound, command, reply)),
        Envelope(
            to=inbound.reply_to or inbound.from_addr,
            to_name=inbound.from_name if verified_sender(inbound) else "",
            from_addr=_from_address(ctx, inbound), from_name=ctx.settings.service.name,
            in_reply_to=inbound.message_id,
            references=[*inbound.references, inbound.message_id],
            auto_reply=True,
        ),
        domain=ctx.settings.service.domain, kind=reply.kind,
        message_id=reply_message_id(ctx, inbound),
    )


def _dispatch(ctx: Context, session: Session, inbound: Inbound, command: Command | None) -> Reply | None:
    """Run the command's handler; HELP for no/unknown command; errors -> command-error."""
    from mailbot.commands import help as help_command

    if command is None:
        command = Command("HELP", "", body=inbound.text, found_in="none")
        return help_command.help_reply(ctx, command, note="We did not find a command in your message.")
    fn = HANDLERS.get(command.verb)
    if fn is None:
        return help_command.help_reply(ctx, command, note=f"{command.verb} is not available on this service.")
    try:
        return fn(ctx, session, inbound, command)
    except CommandError as exc:
        return Reply("command-error", {
            "problem": exc.problem, "hint": exc.hint, "examples": exc.examples,
        }, kind="command-error")


def silence_reason(inbound: Inbound, cap: str = "", headers: Message | None = None) -> str | None:
    """Why this message must get no automatic answer, or None.  ``headers``:
    the request as parsed already (by the router), else its header block is
    parsed here.

    The router decides first (``auto_reply_ok``, which is False for the one
    message that earns the cap notice too -- ``cap`` tells that case apart);
    the header checks repeat RFC 3834 so a bug upstream still cannot make us
    answer a robot."""
    if cap == "over":
        return "daily cap reached; notice already sent"
    if not inbound.auto_reply_ok and cap != "notice":
        return "router: no automatic reply (auto-reply, list mail or policy)"
    if inbound.status in (InboundStatus.DROPPED, InboundStatus.QUARANTINED):
        return f"inbound is {inbound.status}"
    if inbound.action == "bounce":
        return "bounce"
    if inbound.source in ("smtp", "lmtp") and inbound.envelope_from in ("", "<>"):
        return "null envelope sender (a bounce)"
    sender = (inbound.reply_to or inbound.from_addr).lower()
    if sender.split("@", 1)[0] in ("mailer-daemon", "postmaster") or sender.startswith(("bounces@", "noreply", "no-reply")):
        return f"robot sender {sender}"
    if headers is None:
        headers = BytesParser(policy=POLICY).parsebytes(header_block(inbound.raw or b""), headersonly=True)
    # ``header`` reads these unstructured fields without the header registry's
    # parser (issue 16), encoded words decoded and whitespace folded as before
    auto = (header(headers, "Auto-Submitted") or "no").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if header(headers, "Precedence").lower() in ("bulk", "junk", "list", "auto_reply"):
        return "bulk or list mail"
    if header(headers, "X-Loop") or header(headers, "List-Id"):
        return "loop or list header"
    return None


def recipient(ctx: Context, inbound: Inbound) -> ServiceAddress | None:
    """The first of our service addresses the message was sent to."""
    for addr in inbound.envelope_to or []:
        found = classify(ctx.settings, str(addr))
        if found is not None and found.kind != "bounces":
            return found
    return None


def _from_address(ctx: Context, inbound: Inbound) -> str:
    """Answer from the address that was written to (lookup@, jobs@ ...)."""
    found = recipient(ctx, inbound)
    local = found.local if found is not None else ctx.settings.service.lookup_address
    return ctx.settings.service_address(local)


def reply_message_id(ctx: Context, inbound: Inbound) -> str:
    """Derived from the inbound message, so a second reply cannot be stored."""
    return f"<cmd.{inbound.id}.{(inbound.raw_sha256 or 'x')[:16]}@{ctx.settings.service.domain}>"


def _already_answered(conn: Connection, inbound_id: int) -> bool:
    return conn.execute(_ANSWERED, {"inbound_id": inbound_id}).first() is not None


def _record(conn: Connection, inbound: InboundRow, outcome: dict[str, Any]) -> None:
    """Append ``outcome`` to the row's route, in the caller's transaction."""
    inbound.route = [*(inbound.route or []), {"stage": STAGE, **outcome}]
    conn.execute(_SET_ROUTE, {"inbound_id": inbound.id, "new_route": inbound.route})


def reply_subject(subject: str, command: Command | None) -> str:
    """``Re: <their subject>`` (one line, at most 120 characters of it)."""
    subject = clean_header(subject)
    if not subject:
        # The command's own words are the sender's text too: only if inert.
        subject = (inert_subject(f"{command.verb} {command.argument}".strip()) or command.verb) if command \
            else "your message"
    subject = shorten(subject, 120)
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _context(ctx: Context, inbound: Inbound, command: Command | None, reply: Reply) -> dict[str, Any]:
    """What every command template may use, plus the handler's own context."""
    settings = ctx.settings
    service = settings.service
    # The reply goes to an address anyone could have forged: repeat only what
    # ``mail.reflect`` allows (everything for a sender our MTA verified).
    name, subject = reflected(inbound.from_name, inbound.subject, verified_sender(inbound))
    common = {
        "service": {
            "name": service.name, "domain": service.domain, "public_url": service.public_url,
            "ask": settings.service_address(service.ask_address),
            "lookup": settings.service_address(service.lookup_address),
            "jobs": settings.service_address(service.jobs_address),
        },
        "sender_name": name,
        "original_subject": clean_header(subject),
        "reply_subject": reply_subject(subject, command),
        "command": {"verb": command.verb, "argument": command.argument} if command else {"verb": "", "argument": ""},
        "limits": {"max_codes": settings.commands.max_codes, "max_search_words": settings.commands.max_search_words,
                   "daily_cap": settings.guards.daily_reply_cap},
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return {**common, **reply.context}


def unanswered_commands(session: Session, age: timedelta) -> list[Poke]:
    """Recovery rule: commands routed more than ``age`` ago (within
    :data:`RECOVERY_WINDOW`) that have neither a reply nor a recorded
    decision not to reply, and that the queue has not given up on."""
    now = utcnow()
    rows = session.exec(
        select(InboundMessage.id, InboundMessage.route)
        .outerjoin(OutboundMessage, OutboundMessage.inbound_id == InboundMessage.id)
        .where(
            InboundMessage.status == InboundStatus.PROCESSED,
            InboundMessage.action == "command",
            InboundMessage.received_at < now - age,
            InboundMessage.received_at > now - RECOVERY_WINDOW,
            OutboundMessage.id.is_(None),
            # given up on by the queue: a person decides (replay), not the reconciler
            ~exists().where(QuarantineItem.kind == "run_command", QuarantineItem.ref_id == InboundMessage.id,
                            QuarantineItem.resolved_at.is_(None)),
        )
    ).all()
    return [Poke("run_command", inbound_id) for inbound_id, route in rows
            if not any(isinstance(step, dict) and step.get("stage") == STAGE for step in route or [])]
