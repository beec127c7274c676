"""The IMAP poller against a real Dovecot on loopback."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient
from sqlmodel import select

from mailbot.config import load_settings
from mailbot.context import Context
from mailbot.mail.imap_poller import PROCESSED_FLAG, ImapPoller
from mailbot.models import InboundMessage
from mailbot.models.imap import ImapFolderState
from tests.mail.conftest import StoredIds
from tests.mail.dovecot import Dovecot, start_dovecot

pytestmark = pytest.mark.imap
_folders = itertools.count(1)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    server = start_dovecot()
    yield server
    server.stop(remove=True)


@pytest.fixture
def folder(dovecot) -> str:
    """A fresh folder per test, so tests share one server."""
    name = f"In{next(_folders)}"
    with imap(dovecot) as client:
        client.create_folder(name)
    return name


def imap(dovecot: Dovecot) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=10)
    client.login(dovecot.user, dovecot.password)
    return client


def poller_ctx(tmp_path, db, dovecot: Dovecot, folder: str, **overrides) -> Context:
    values = {
        "service.var_dir": str(tmp_path / "var"), "database.url": db.url,
        "imap.host": "127.0.0.1", "imap.port": dovecot.port, "imap.ssl": False,
        "imap.username": dovecot.user, "imap.folder": folder, "imap.processed_folder": f"{folder}-done",
        "imap.idle_seconds": 10, "imap.max_backoff_seconds": 1,
    }
    values.update(overrides)
    settings = load_settings(path=None, environ={"MAILBOT_IMAP__PASSWORD": dovecot.password}, overrides=values)
    return Context(settings, db=db)


def message(n: int, message_id: bool = True) -> bytes:
    mid = f"Message-ID: <imap-{n}-{time.time_ns()}@clinic.example>\r\n" if message_id else ""
    return (f"Return-Path: <coder@clinic.example>\r\nDelivered-To: ask@mailbot.localhost\r\n"
            f"From: coder@clinic.example\r\nTo: ask@mailbot.localhost\r\nSubject: question {n}\r\n{mid}\r\n"
            f"Is 9921{n % 10} right? ({time.time_ns()})\r\n").encode()


def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def rows(db) -> list[InboundMessage]:
    with db.read() as session:
        return list(session.exec(select(InboundMessage).order_by(InboundMessage.id)).all())


def test_new_mail_is_stored_then_moved_unread_to_the_processed_folder(tmp_path, db, dovecot, folder):
    with imap(dovecot) as client:
        for n in range(3):
            client.append(folder, message(n, message_id=n != 1))
    stored = StoredIds()
    poller = ImapPoller(poller_ctx(tmp_path, db, dovecot, folder), on_stored=stored)
    poller.start()
    try:
        stored.wait(3)
        with imap(dovecot) as client:
            # IDLE: a message arriving now is picked up without waiting for a poll.
            client.append(folder, message(7))
            stored.wait(4)
            wait_until(lambda: client.select_folder(folder)[b"EXISTS"] == 0)
            client.select_folder(f"{folder}-done")
            flags = client.get_flags(client.search("ALL"))
    finally:
        poller.stop()
    assert len(stored) == 4
    stored_rows = rows(db)
    assert [r.source for r in stored_rows] == ["imap"] * 4
    assert stored_rows[0].envelope_from == "coder@clinic.example"
    assert stored_rows[0].envelope_to == ["ask@mailbot.localhost"]
    assert stored_rows[1].message_id == ""            # none in the header; parsing generates one later
    assert len(flags) == 4 and all(b"\\Seen" not in f for f in flags.values())   # BODY.PEEK
    with db.read() as session:
        state = session.exec(select(ImapFolderState).where(ImapFolderState.folder == folder)).one()
    assert state.last_uid == 4 and state.uidvalidity > 0


def test_a_message_stored_before_a_crash_is_not_stored_twice(tmp_path, db, dovecot, folder):
    """Crash after intake but before the move: the message is still in the
    folder; the next pass skips it (same Message-ID) and moves it."""
    from mailbot.mail.intake import accept

    raw = message(1)
    accept(db, raw, source="imap", envelope_from="coder@clinic.example", envelope_to=[], peer="before-crash")
    with imap(dovecot) as client:
        client.append(folder, raw)
        client.append(folder, message(2))
    poller = ImapPoller(poller_ctx(tmp_path, db, dovecot, folder))
    client = poller.connect()
    try:
        assert poller.catch_up(client) == 1
        assert client.select_folder(folder)[b"EXISTS"] == 0
    finally:
        client.logout()
    assert [r.peer.split("/")[0] for r in rows(db)] == ["before-crash", folder]


def test_a_uidvalidity_change_rescans_without_duplicates(tmp_path, db, dovecot, folder):
    ctx = poller_ctx(tmp_path, db, dovecot, folder)
    first = [message(1), message(2)]
    with imap(dovecot) as client:
        for raw in first:
            client.append(folder, raw)
    poller = ImapPoller(ctx)
    client = poller.connect()
    try:
        assert poller.catch_up(client) == 2
        # The server "renumbers" the folder: the same messages appear again
        # under a new UIDVALIDITY (simulated by changing the stored one).
        with db.session() as session:
            state = session.exec(select(ImapFolderState).where(ImapFolderState.folder == folder)).one()
            state.uidvalidity, state.last_uid = state.uidvalidity + 1, 10_000
        for raw in first + [message(3)]:
            client.append(folder, raw)
        assert poller.catch_up(client) == 1
        assert client.select_folder(folder)[b"EXISTS"] == 0
    finally:
        client.logout()
    assert len(rows(db)) == 3


def test_without_a_processed_folder_messages_are_flagged(tmp_path, db, dovecot, folder):
    with imap(dovecot) as client:
        client.append(folder, message(1))
    poller = ImapPoller(poller_ctx(tmp_path, db, dovecot, folder, **{"imap.processed_folder": ""}))
    client = poller.connect()
    try:
        assert poller.catch_up(client) == 1
        client.select_folder(folder)
        [flags] = client.get_flags(client.search("ALL")).values()
        assert PROCESSED_FLAG in flags
        assert poller.catch_up(client) == 0           # not fetched again
        with db.session() as session:                 # even when the position is lost
            session.delete(session.exec(select(ImapFolderState).where(ImapFolderState.folder == folder)).one())
        assert poller.catch_up(client) == 0
    finally:
        client.logout()


def test_the_poller_reconnects_and_catches_up_after_the_server_restarts(tmp_path, db, dovecot, folder):
    stored = StoredIds()
    poller = ImapPoller(poller_ctx(tmp_path, db, dovecot, folder), on_stored=stored)
    poller.start()
    try:
        wait_until(lambda: poller.passes >= 1)
        dovecot.stop()
        # The server is gone; make sure the poller's socket notices now
        # rather than at the next IDLE renewal.
        try:
            poller.client.socket().shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        time.sleep(1.5)                                # a refused reconnect or two
        dovecot.start()
        with imap(dovecot) as client:
            client.append(folder, message(5))
        stored.wait(1, timeout=30)
        assert len(stored) == 1 and poller.connects >= 2
    finally:
        poller.stop()


def test_wrong_credentials_are_retried_with_backoff_not_fatal(tmp_path, db, dovecot, folder):
    ctx = poller_ctx(tmp_path, db, dovecot, folder)
    ctx.settings.imap.username = "nobody@mailbot.localhost"
    poller = ImapPoller(ctx)
    poller.start()
    time.sleep(1.5)
    assert poller.is_alive() and poller.passes == 0
    poller.stop()
    assert not poller.is_alive()


def test_an_oversized_message_is_left_flagged_and_quarantined(tmp_path, db, dovecot, folder):
    from mailbot.mail.imap_poller import TOO_LARGE_FLAG
    from mailbot.models import QuarantineItem

    big = message(1).replace(b"Is 9921", b"x" * 3000 + b"\r\nIs 9921")
    with imap(dovecot) as client:
        client.append(folder, big)
        client.append(folder, message(2))
    poller = ImapPoller(poller_ctx(tmp_path, db, dovecot, folder, **{"smtp.max_message_size": 2048}))
    client = poller.connect()
    try:
        assert poller.catch_up(client) == 1
        client.select_folder(folder)
        [(uid, flags)] = client.get_flags(client.search("ALL")).items()
        assert TOO_LARGE_FLAG in flags
        assert poller.catch_up(client) == 0               # not looked at again
    finally:
        client.logout()
    with db.read() as session:
        [item] = session.exec(select(QuarantineItem)).all()
    assert item.kind == "imap" and f"{folder} UID {uid}" in item.reason and "over smtp.max_message_size 2048" in item.reason
    assert len(rows(db)) == 1
