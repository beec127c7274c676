"""Issue 17: the SMTP intake must survive anything one delivery does.

Over real SMTP against the real listener: a client that gives up while its
commit waits for a locked database (point 1), lines longer than 1,000
characters as Outlook writes them (point 5), and headers over the parser's
bounds (points 2, 3, 15: refused at DATA with a reason, the next message
still accepted).
"""

from __future__ import annotations

import smtplib
import threading

import pytest
from sqlalchemy import text

from mailbot.context import Context
from mailbot.mail import limits
from mailbot.mail.smtp_listener import SmtpListener
from tests.conftest import make_settings
from tests.mail.conftest import StoredIds

QUESTION = (b"From: Coder <coder@clinic.example>\r\nSubject: 99213?\r\nMessage-ID: <{n}@clinic.example>\r\n"
            b"\r\nIs 99213 right?\r\n")


def question(n: int) -> bytes:
    return QUESTION.replace(b"{n}", str(n).encode())


def deliver(listener: SmtpListener, raw: bytes, timeout: float = 30) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=timeout) as smtp:
        smtp.ehlo("client.example")
        smtp.mail("coder@clinic.example")
        smtp.rcpt("ask@mailbot.localhost")
        return smtp.data(raw)


class WriteLock:
    """Another process holding the database's write lock (SQLite: BEGIN
    IMMEDIATE on the file; PostgreSQL: an exclusive lock on the table)."""

    def __init__(self, db) -> None:
        self.db = db
        self.conn = None

    def __enter__(self):
        if self.db.is_sqlite:
            import sqlite3

            self.conn = sqlite3.connect(self.db.engine.url.database, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn = self.db.engine.connect()
            self.conn.execute(text("LOCK TABLE inbound_message IN ACCESS EXCLUSIVE MODE"))
        return self

    def __exit__(self, *exc) -> None:
        if self.db.is_sqlite:
            self.conn.execute("ROLLBACK")
        else:
            self.conn.rollback()
        self.conn.close()


def test_a_client_that_gives_up_while_its_commit_waits_does_not_kill_intake(listener, stored, db):
    """Issue 17 point 1: the writer resolved a future aiosmtpd had already
    cancelled; InvalidStateError ended the intake-writer thread and every
    later delivery waited for nothing."""
    gave_up = []
    with WriteLock(db):
        for n in range(3):
            try:
                deliver(listener, question(n), timeout=1.5)
            except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
                gave_up.append(exc)
    assert len(gave_up) == 3                       # the clients really did give up
    # Released: the waiting batch commits for clients that are gone ...
    code, reply = deliver(listener, question(99))
    assert code == 250, reply                      # ... and the next delivery is stored
    assert listener.writer.problem() is None
    assert listener.writer.abandoned >= 1
    assert len(stored.wait(4)) == 4                # the abandoned ones are stored too (the sender retries; dedupe)


def test_a_dead_writer_answers_451_at_once_and_health_says_so(listener, stored):
    listener.writer.close()                        # the thread is gone, whatever the cause
    code, _ = deliver(listener, question(1))
    assert code == 451
    assert listener.writer.problem() == "intake writer thread is not running"
    assert listener.ctx.health.report()["intake_writer"] == "intake writer thread is not running"


@pytest.fixture
def long_lines_listener(tmp_path, db) -> StoredIds:
    stored = StoredIds()
    listener = SmtpListener(Context(make_settings(tmp_path, db, **{"smtp.max_line_length": 5000}), db=db),
                            on_stored=stored)
    listener.start()
    yield listener, stored
    listener.stop()


@pytest.mark.parametrize("length", [1_523, 4_464])
def test_outlook_lines_longer_than_1000_are_accepted_when_configured(long_lines_listener, length):
    """Issue 17 point 5: the limit was set after aiosmtpd had sized its
    stream reader, so any line over ~1,000 bytes got a permanent 500."""
    listener, stored = long_lines_listener
    code, reply = deliver(listener, question(length) + b"<p>" + b"x" * (length - 7) + b"</p>\r\n")
    assert code == 250, reply
    assert len(stored.wait(1)) == 1


def test_a_line_over_the_configured_limit_is_still_refused_and_the_session_goes_on(long_lines_listener):
    listener, _ = long_lines_listener
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as smtp:
        smtp.ehlo("client.example")
        smtp.mail("coder@clinic.example")
        smtp.rcpt("ask@mailbot.localhost")
        code, _ = smtp.data(question(1) + b"y" * 6000 + b"\r\n")
        assert code == 500
        code, _ = smtp.noop()
        assert code == 250
    assert deliver(listener, question(2))[0] == 250


def _folded_subject(lines: int) -> bytes:
    return b"Subject: " + b"\r\n ".join(b"word%05d lorem ipsum dolor" % i for i in range(lines))


HOSTILE_HEADERS = {
    # point 2: a Subject folded over 2,700 lines (~90 s in the email parser)
    "folded_subject": (b"From: a@example.org\r\n" + _folded_subject(2_700) + b"\r\n\r\nhi\r\n", "subject header is over"),
    # point 3: adjacent encoded words (memory grows as their count squared)
    "encoded_words": (b"From: a@example.org\r\nSubject: " + b"\r\n ".join([b"=?utf-8?q?a?=" * 50] * 1_200)
                      + b"\r\n\r\nhi\r\n", "is over"),
    "encoded_words_in_one_field": (b"From: a@example.org\r\nSubject: " + b"=?utf-8?q?a?=" * 1_000 + b"\r\n\r\nhi\r\n",
                                   "more than 200 encoded words"),
    "encoded_words_over_fields": (b"From: a@example.org\r\n" + b"X-E: " + b"=?utf-8?q?a?=" * 150 + b"\r\n" * 1
                                  + b"".join(b"X-E%d: " % i + b"=?utf-8?q?a?=" * 150 + b"\r\n" for i in range(7))
                                  + b"\r\nhi\r\n", "more than 1000 encoded words"),
    # point 15: a To of 50,000 addresses (32 s to route)
    "addresses": (b"From: a@example.org\r\nTo: " + b",\r\n ".join(b"u%d@x.example" % i for i in range(50_000))
                  + b"\r\nSubject: hi\r\n\r\nhi\r\n", "is over"),
    "addresses_in_one_field": (b"From: a@example.org\r\nTo: " + b",\r\n ".join(b"u%d@x.example" % i for i in range(1_000))
                               + b"\r\nSubject: hi\r\n\r\nhi\r\n", "more than 500 addresses"),
    "many_to_fields": (b"From: a@example.org\r\n" + b"".join(b"Cc: u%d@x.example\r\n" % i for i in range(600))
                       + b"Subject: hi\r\n\r\nhi\r\n", "more than 500 addresses"),
    "many_fields": (b"From: a@example.org\r\n" + b"X-A: b\r\n" * 2_000 + b"\r\nhi\r\n", "more than 1000 header fields"),
    "huge_header": (b"From: a@example.org\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 900) for i in range(400))
                    + b"\r\nhi\r\n", "header block is over"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_HEADERS))
def test_a_header_over_a_bound_is_refused_at_data_and_the_next_message_is_stored(name, tmp_path, db):
    raw, reason = HOSTILE_HEADERS[name]
    stored = StoredIds()
    settings = make_settings(tmp_path, db, **{"smtp.max_line_length": 100_000})
    listener = SmtpListener(Context(settings, db=db), on_stored=stored)
    listener.start()
    try:
        code, reply = deliver(listener, raw)
        assert code == 554 and reason in reply.decode(), reply
        assert deliver(listener, question(1))[0] == 250
    finally:
        listener.stop()
    assert len(stored) == 1
    assert limits.check(raw) is not None


def test_other_deliveries_proceed_while_one_client_waits_on_a_slow_commit(listener, stored, db):
    """The listener's loop never blocks on storing: while the database is
    locked a second client still gets its banner and EHLO answered."""
    result: list = []
    lock = WriteLock(db)
    lock.__enter__()
    try:
        waiting = threading.Thread(target=lambda: result.append(deliver(listener, question(7))))
        waiting.start()
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as other:
            assert other.ehlo("other.example")[0] == 250
    finally:
        lock.__exit__()
    waiting.join(60)
    assert result and result[0][0] == 250


def test_postgresql_dropping_the_writers_kept_session_costs_no_451(tmp_path):
    """On PostgreSQL the writer keeps one connection between batches (no
    pool pre-ping per commit).  When the server ends that session between
    two messages, the next message is still stored once and answered 250."""
    from sqlmodel import select

    from mailbot.models import InboundMessage
    from tests.conftest import make_database

    database, cleanup = make_database("postgresql", tmp_path, "kept")
    stored = StoredIds()
    listener = SmtpListener(Context(make_settings(tmp_path, database), db=database), on_stored=stored)
    listener.start()
    try:
        assert deliver(listener, question(1))[0] == 250
        pid = listener.writer._conn.connection.dbapi_connection.info.backend_pid
        with database.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert deliver(listener, question(2))[0] == 250
        assert listener.writer._conn.connection.dbapi_connection.info.backend_pid != pid
    finally:
        listener.stop()
    try:
        with database.read() as session:
            assert len(session.exec(select(InboundMessage.id)).all()) == 2
        assert sorted(stored) == sorted(set(stored)) and len(stored) == 2
    finally:
        cleanup()
