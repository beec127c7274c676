"""A running mail service for end-to-end command tests: the real SMTP
listener, the embedded dramatiq worker (router, run_command, send_outbound)
and an aiosmtpd relay sink that receives the replies.

Started once per module (starting the listener and worker costs more than a
test); each test still gets an emptied database through the ``db`` fixture.
"""

from __future__ import annotations

import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage

from mailbot.context import Context, configure
from mailbot.db import Database
from tests.conftest import make_settings
from tests.support.relay_sink import Received, RelaySink


@dataclass
class MailService:
    ctx: Context
    smtp_port: int
    sink: RelaySink

    def send(self, subject: str, text: str, *, to: str = "lookup@mailbot.localhost",
             from_addr: str = "coder@example.org", message_id: str | None = None,
             headers: dict[str, str] | None = None, html: str | None = None) -> str:
        """Send one message to the listener; returns its Message-ID."""
        msg = EmailMessage()
        msg["From"] = f"Casey Coder <{from_addr}>"
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = message_id or f"<{time.monotonic_ns()}@example.org>"
        for name, value in (headers or {}).items():
            msg[name] = value
        msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as smtp:
            smtp.send_message(msg, from_addr=from_addr, to_addrs=[to])
        return str(msg["Message-ID"])

    def replies_to(self, message_id: str, timeout: float = 20.0) -> list[Received]:
        """Wait for the replies threaded to ``message_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.sink.messages if m.message["In-Reply-To"] == message_id]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no reply to {message_id} after {timeout}s; sink has {len(self.sink.messages)}")

    def settle(self, seconds: float = 1.0) -> None:
        """Let the worker finish whatever is still queued."""
        import dramatiq

        dramatiq.get_broker().join("default", timeout=int(seconds * 1000) + 20_000)
        time.sleep(seconds)


def start_service(database: Database, tmp_path, **overrides) -> tuple[MailService, callable]:
    sink = RelaySink().__enter__()
    settings = make_settings(tmp_path, database, **{"relay.host": "127.0.0.1", "relay.port": sink.port, **overrides})
    ctx = configure(Context(settings, db=database))
    # Imported only now: importing the broker module reads the current context.
    import workflows.broker
    from mailbot.mail.smtp_listener import SmtpListener
    from mailbot_cli import processes
    from workflows.embedded import start_worker

    workflows.broker.install(settings)
    worker = start_worker(ctx)
    listener = SmtpListener(ctx, on_stored=processes.on_stored)
    listener.start()

    def stop() -> None:
        listener.stop()
        worker.stop()
        sink.__exit__(None, None, None)
        workflows.broker.install(make_settings(tmp_path))

    return MailService(ctx, listener.port, sink), stop
