"""Commands arriving through IMAP: a real Dovecot mailbox polled by the
IMAP poller, the same router and command actor, replies to the relay sink."""

from __future__ import annotations

import time
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient
from pydantic import SecretStr

from mailbot.mail.imap_poller import ImapPoller
from tests.commands.service import start_service
from tests.commands.support import bodies
from tests.mail.dovecot import start_dovecot

pytestmark = pytest.mark.imap
MAILBOX = "lookup@mailbot.localhost"


@pytest.fixture(scope="module")
def dovecot():
    server = start_dovecot(user=MAILBOX)
    yield server
    server.stop(remove=True)


@pytest.fixture(scope="module")
def service(codes_db, dovecot, tmp_path_factory):
    from mailbot_cli import processes

    running, stop = start_service(codes_db, tmp_path_factory.mktemp("imap-svc"), **{
        "imap.host": "127.0.0.1", "imap.port": dovecot.port, "imap.ssl": False, "imap.username": MAILBOX,
        "imap.folder": "INBOX", "imap.processed_folder": "Processed", "imap.idle_seconds": 10,
        "imap.max_backoff_seconds": 1})
    running.ctx.settings.imap.password = SecretStr(dovecot.password)  # secrets come from the environment
    poller = ImapPoller(running.ctx, on_stored=processes.on_stored)
    poller.start()
    yield running
    poller.stop()
    stop()


def deliver(dovecot, subject: str, text: str = "") -> str:
    """Put a message into the mailbox as the MTA would (with Delivered-To)."""
    msg = EmailMessage()
    msg["Delivered-To"] = MAILBOX
    msg["Return-Path"] = "<coder@example.org>"
    msg["From"] = "Casey Coder <coder@example.org>"
    msg["To"] = MAILBOX
    msg["Subject"] = subject
    msg["Message-ID"] = f"<imap-{time.monotonic_ns()}@example.org>"
    msg.set_content(text)
    with IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=10) as client:
        client.login(dovecot.user, dovecot.password)
        client.append("INBOX", msg.as_bytes())
    return str(msg["Message-ID"])


def test_every_command_works_through_imap(service, dovecot, db):
    lookup = deliver(dovecot, "LOOKUP E11.22 J1030")
    search = deliver(dovecot, "SEARCH renal cryoablation")
    check = deliver(dovecot, "CHECK 20610 99213")
    broken = deliver(dovecot, "LOOKUP", "no codes here")

    lookup_text, _ = bodies(service.replies_to(lookup, timeout=30)[0].message)
    assert "Type 2 diabetes mellitus with diabetic chronic kidney disease" in lookup_text
    assert "Injection, methylprednisolone acetate, 40 mg" in lookup_text
    search_reply = service.replies_to(search, timeout=30)[0]
    assert search_reply.message["X-Mailbot-Kind"] == "search" and "LOOKUP " in bodies(search_reply.message)[0]
    check_text, _ = bodies(service.replies_to(check, timeout=30)[0].message)
    assert "NCCI PAIR EDITS" in check_text
    broken_text, _ = bodies(service.replies_to(broken, timeout=30)[0].message)
    assert "We found no codes" in broken_text

    replies = [m for m in service.sink.messages if m.message["In-Reply-To"] in (lookup, search, check, broken)]
    assert len(replies) == 4 and all(m.recipients == ["coder@example.org"] for m in replies)
    with IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=10) as client:
        client.login(dovecot.user, dovecot.password)
        deadline = time.monotonic() + 10
        while client.select_folder("INBOX")[b"EXISTS"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0          # moved after handoff
        assert client.select_folder("Processed")[b"EXISTS"] == 4
