"""Two auto-responders replying to each other: our side stops.

The whole service runs for real -- SMTP listener, router, the embedded
worker running the command actor, delivery to the relay.  The relay is the
other side's mail server, where an auto-responder answers every message it
gets by mail back to our listener.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from mailbot.context import Context, configure
from mailbot.mail.routing import cap_verdict
from mailbot.models import InboundMessage, OutboundMessage
from tests.conftest import make_settings
from tests.support.net import free_port

PEER = "bot@peer.example"


class AutoResponder:
    """The other side: answers every message it receives, by SMTP, to the
    message's sender -- politely (RFC 3834 headers) or naively (none)."""

    def __init__(self, our_port: int, polite: bool) -> None:
        self.our_port, self.polite = our_port, polite
        self.received: list[EmailMessage] = []
        self.sent = 0
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server, session, envelope):
        message = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        with self.lock:
            self.received.append(message)
        # Answer from another thread: a mail server does not reply inside DATA.
        threading.Thread(target=self._answer, args=(message,), daemon=True).start()
        return "250 2.0.0 queued"

    def _answer(self, incoming: EmailMessage) -> None:
        reply = EmailMessage()
        reply["From"] = PEER
        reply["To"] = str(incoming["Reply-To"] or incoming["From"])
        reply["Subject"] = f"Re: {incoming['Subject']}"
        reply["Message-ID"] = f"<auto-{time.monotonic_ns()}@peer.example>"
        reply["In-Reply-To"] = str(incoming["Message-ID"])
        if self.polite:
            reply["Auto-Submitted"] = "auto-replied"
        reply.set_content("Thank you for your message. This is an automatic reply.")
        recipient = reply["To"].addresses[0].addr_spec
        with smtplib.SMTP("127.0.0.1", self.our_port, timeout=10) as smtp:
            smtp.send_message(reply, from_addr=PEER, to_addrs=[recipient])
        with self.lock:
            self.sent += 1


@pytest.fixture
def service(tmp_path, db) -> Iterator[callable]:
    started: list = []

    def start(polite: bool, cap: int):
        port = free_port()
        responder = AutoResponder(port, polite)
        responder.controller.start()
        settings = make_settings(tmp_path, db, **{
            "relay.host": "127.0.0.1", "relay.port": responder.controller.port,
            "smtp.port": port, "guards.daily_reply_cap": cap})
        ctx = configure(Context(settings, db=db))
        # Imported only now: importing the broker module reads the current context.
        import workflows.broker
        from mailbot.mail.smtp_listener import SmtpListener
        from mailbot_cli import processes
        from workflows.embedded import start_worker

        workflows.broker.install(settings)
        worker = start_worker(ctx)
        listener = SmtpListener(ctx, on_stored=processes.on_stored)
        listener.start()
        started.extend([listener.stop, worker.stop, responder.controller.stop])
        return responder, port

    yield start
    for stop in started:
        stop()
    import workflows.broker

    workflows.broker.install(make_settings(tmp_path))


def quiet(db, seconds: float = 1.5, timeout: float = 60.0) -> None:
    """Wait until no new inbound or outbound row appeared for ``seconds``."""
    def counts():
        with db.read() as session:
            return (len(session.exec(select(InboundMessage.id)).all()),
                    len(session.exec(select(OutboundMessage.id).where(OutboundMessage.state == "sent")).all()))
    deadline = time.monotonic() + timeout
    last, since = counts(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = counts()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
    raise AssertionError("the conversation did not stop")


def start_conversation(port: int) -> None:
    """The other side's user writes once; everything after is automatic."""
    first = EmailMessage()
    first["From"], first["To"], first["Subject"] = PEER, "lookup@mailbot.localhost", "HELP"
    first["Message-ID"] = "<start@peer.example>"
    first.set_content("HELP")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(first)


def test_a_naive_auto_responder_meets_our_daily_cap_and_the_loop_stops(service, db):
    responder, port = service(polite=False, cap=3)
    start_conversation(port)
    quiet(db)
    with db.read() as session:
        inbound = session.exec(select(InboundMessage).order_by(InboundMessage.id)).all()
        sent = session.exec(select(OutboundMessage).where(OutboundMessage.to_addr == PEER)).all()
    # 3 answers, then the one "no more today" notice, then silence.
    assert [o.kind for o in sent][-1] == "cap-notice" and len(sent) == 4
    assert len(responder.received) == 4
    assert len(inbound) == 5 and inbound[-1].auto_reply_ok is False
    assert cap_verdict(inbound[-1]) == "over"
    # Everything we sent says it was automatic, so a polite peer would have stopped at once.
    assert all(m["Auto-Submitted"] == "auto-replied" for m in responder.received)


def test_a_polite_auto_responder_gets_no_answer_at_all(service, db):
    responder, port = service(polite=True, cap=10)
    start_conversation(port)
    quiet(db)
    with db.read() as session:
        inbound = session.exec(select(InboundMessage).order_by(InboundMessage.id)).all()
    assert len(responder.received) == 1          # our answer to the human's HELP
    assert [(m.status, m.action) for m in inbound] == [("processed", "command"), ("dropped", "auto_submitted")]
