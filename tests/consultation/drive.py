"""Run the pipeline without a queue: each poke calls the service its actor
would call, in order, until nothing is left.  Real database, real relay
sink, real LLM server -- only the queue is replaced by a loop, so the tests
of the state machine are deterministic (the queue itself is exercised in
``test_end_to_end`` and ``test_faults``)."""

from __future__ import annotations

from collections import deque
from email.message import EmailMessage

from mailbot.commands import runner
from mailbot.context import Context
from mailbot.mail import intake
from mailbot.services import Poke, consultations, delivery, inbound


def _run(ctx: Context, poke: Poke) -> list[Poke]:
    if poke.actor == "process_inbound":
        return inbound.process(ctx, poke.id)
    if poke.actor == "advance_consultation":
        return consultations.advance(ctx, poke.id)
    if poke.actor == "consultation_followup":
        return consultations.followup(ctx, poke.id)
    if poke.actor == "send_outbound":
        try:
            delivery.deliver(ctx, poke.id)
        except delivery.RetryLater:
            pass
        return []
    if poke.actor == "run_command":
        return runner.run(ctx, poke.id)
    return []


def drive(ctx: Context, pokes: list[Poke], max_steps: int = 100) -> None:
    queue = deque(pokes)
    postponed = 0
    while queue and max_steps:
        max_steps -= 1
        poke = queue.popleft()
        try:
            queue.extend(_run(ctx, poke))
            postponed = 0
        except consultations.TryLater:
            postponed += 1
            if postponed > len(queue) + 1:
                raise
            queue.append(poke)


def question(subject: str, text: str, *, from_addr: str = "casey@example.org", name: str = "Casey Coder",
             message_id: str = "<q1@example.org>", to: str = "ask@mailbot.localhost",
             headers: dict[str, str] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"{name} <{from_addr}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(text)
    return msg


def receive(ctx: Context, message: EmailMessage) -> int:
    """Store ``message`` through intake and run everything it causes."""
    raw = message.as_bytes()
    inbound_id = intake.accept(ctx.db, raw, source="smtp", envelope_from=message["From"].addresses[0].addr_spec,
                               envelope_to=[message["To"].addresses[0].addr_spec], peer="127.0.0.1")
    drive(ctx, [Poke("process_inbound", inbound_id)])
    return inbound_id
