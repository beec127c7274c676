"""An aiosmtpd server on loopback standing in for the outbound SMTP relay.

It records every message it accepts; ``answer`` can be set to make it refuse
(e.g. ``"451 4.3.0 try later"`` or ``"550 5.1.1 no such user"``) so tests can
show retries and permanent failures.  ``RelaySink(pipelining=True)`` offers
SMTP PIPELINING as Postfix does (aiosmtpd reads commands from a stream, so
pipelined ones are served in order); ``refuse`` maps recipients to a RCPT
answer; ``break_after`` closes the session after that many accepted messages.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller

from tests.support.net import free_port


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.raw)


@dataclass
class _Handler:
    answer: str | None = None
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pipelining: bool = False
    refuse: dict[str, str] = field(default_factory=dict)
    break_after: int | None = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.answer:
            return self.answer
        with self.lock:
            if self.break_after is not None and len(self.messages) >= self.break_after:
                server.transport.close()          # the relay goes away mid-session
                return "421 4.3.0 closing"
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 2.0.0 queued"


class RelaySink:
    def __init__(self, *, pipelining: bool = False, refuse: dict[str, str] | None = None,
                 break_after: int | None = None) -> None:
        self.handler = _Handler(pipelining=pipelining, refuse=dict(refuse or {}), break_after=break_after)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=free_port())

    def __enter__(self) -> "RelaySink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    def answer(self, smtp_reply: str | None) -> None:
        """Make the sink refuse every message with ``smtp_reply`` (None = accept)."""
        self.handler.answer = smtp_reply

    def wait_for(self, count: int, timeout: float = 20.0, where=None) -> list[Received]:
        """At least ``count`` messages (those ``where`` accepts, when given), waiting up to ``timeout``."""
        def chosen() -> list[Received]:
            return [m for m in self.messages if where is None or where(m)]

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(found := chosen()) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"relay sink got {len(chosen())} message(s), expected {count}")
