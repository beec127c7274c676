"""Helpers for command tests: inbound rows as the router leaves them, and
the reply a run queued, parsed back into an EmailMessage."""

from __future__ import annotations

import hashlib
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from sqlmodel import select

from mailbot.models import InboundMessage, InboundStatus, OutboundMessage


def raw_message(subject: str, text: str, *, from_addr: str = "coder@example.org", to: str = "lookup@mailbot.localhost",
                message_id: str = "<req-1@example.org>", headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Casey Coder <{from_addr}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    return msg.as_bytes()


def routed_command(db, subject: str = "", text: str = "", *, to: str = "lookup@mailbot.localhost",
                   from_addr: str = "coder@example.org", message_id: str = "<req-1@example.org>",
                   route: list | None = None, auto_reply_ok: bool = True, headers: dict[str, str] | None = None,
                   envelope_from: str | None = None, source: str = "smtp") -> int:
    """Store an inbound message the way the router leaves a command; returns its id."""
    raw = raw_message(subject, text, from_addr=from_addr, to=to, message_id=message_id, headers=headers)
    with db.session() as session:
        row = InboundMessage(
            source=source, envelope_from=from_addr if envelope_from is None else envelope_from,
            envelope_to=[to], raw=raw, raw_sha256=hashlib.sha256(raw).hexdigest(), size=len(raw),
            message_id=message_id, from_addr=from_addr, from_name="Casey Coder", subject=subject,
            text=text, full_text=text, status=InboundStatus.PROCESSED, action="command",
            route=route or [{"rule": "command", "result": "match"}], auto_reply_ok=auto_reply_ok,
        )
        session.add(row)
        session.flush()
        return row.id


def replies(db, inbound_id: int | None = None) -> list[OutboundMessage]:
    with db.read() as session:
        query = select(OutboundMessage).order_by(OutboundMessage.id)
        if inbound_id is not None:
            query = query.where(OutboundMessage.inbound_id == inbound_id)
        return list(session.exec(query).all())


def parsed(row: OutboundMessage) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(row.raw)


def bodies(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a reply."""
    text = message.get_body(("plain",)).get_content()
    html_part = message.get_body(("html",))
    return text, html_part.get_content() if html_part is not None else ""


def ask_by_mail(ctx, db):
    """``ask(subject, text="") -> (kind, text, html)``: one command mail routed,
    run and its one reply read back (the runner on the test database)."""
    from mailbot.commands import runner

    def ask(subject: str, text: str = "") -> tuple[str, str, str]:
        inbound_id = routed_command(db, subject, text, message_id=f"<{abs(hash((subject, text)))}@example.org>")
        runner.run(ctx, inbound_id)
        [row] = replies(db, inbound_id)
        return (row.kind, *bodies(parsed(row)))

    return ask
