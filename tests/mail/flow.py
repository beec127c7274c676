"""Issue 17 test helper: deliver a message over real SMTP to the real
listener (aiosmtpd on loopback), then run what the actors would run, in
this process: route, answer the command, acknowledge the consultation, count
bounces.  Returns the stored inbound id."""

from __future__ import annotations

import smtplib
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from sqlmodel import select

from mailbot.commands import runner
from mailbot.jobs import subscriptions
from mailbot.models import InboundMessage, OutboundMessage, QuarantineItem
from mailbot.services import Poke, consultations, inbound

ASK = "ask@mailbot.localhost"
LOOKUP = "lookup@mailbot.localhost"
BOUNCES = "bounces@mailbot.localhost"


def run(ctx, pokes: list[Poke]) -> None:
    for poke in pokes:
        if poke.actor == "run_command":
            run(ctx, runner.run(ctx, poke.id))
        elif poke.actor == "bounce_recorded":
            with ctx.db.session() as session:
                subscriptions.record_bounce(session, ctx.settings, poke.id)
        elif poke.actor == "advance_consultation":
            consultations.advance(ctx, poke.id)      # one step: the acknowledgement


def smtp_send(listener, raw: bytes, *, sender: str, to: str | list[str]) -> None:
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=20) as smtp:
        smtp.sendmail(sender, [to] if isinstance(to, str) else to, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def deliver(ctx, listener, stored, raw: bytes, *, sender: str, to: str | list[str] = ASK) -> int:
    before = len(stored)
    smtp_send(listener, raw, sender=sender, to=to)
    inbound_id = stored.wait(before + 1)[before]
    run(ctx, inbound.process(ctx, inbound_id))
    return inbound_id


def row(ctx, inbound_id: int) -> InboundMessage:
    with ctx.db.read() as session:
        return session.get(InboundMessage, inbound_id)


def replies(ctx, inbound_id: int) -> list[EmailMessage]:
    """Every message we queued in answer to ``inbound_id``, parsed."""
    with ctx.db.read() as session:
        rows = session.exec(select(OutboundMessage).where(OutboundMessage.inbound_id == inbound_id)).all()
    return [BytesParser(policy=policy.default).parsebytes(r.raw) for r in rows]


def quarantine_items(ctx) -> list[QuarantineItem]:
    with ctx.db.read() as session:
        return list(session.exec(select(QuarantineItem)).all())
