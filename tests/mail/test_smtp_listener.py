"""The real SMTP listener, driven with smtplib over loopback."""

from __future__ import annotations

import shutil
import smtplib
import socket
import ssl
import subprocess

import pytest
from sqlalchemy import text
from sqlmodel import select

from mailbot.context import Context
from mailbot.db import Database
from mailbot.mail.smtp_listener import SmtpListener
from mailbot.models import InboundMessage
from tests.conftest import _drop_pg_database, make_database, make_settings
from tests.mail.conftest import StoredIds, crlf, eml

QUESTION = b"From: Coder <coder@clinic.example>\r\nSubject: 99213?\r\nMessage-ID: <q@clinic.example>\r\n\r\nIs 99213 right?\r\n"


def client(listener: SmtpListener) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", listener.port, timeout=10)
    smtp.ehlo("client.example")
    return smtp


def count(database: Database) -> int:
    with database.read() as session:
        return len(session.exec(select(InboundMessage.id)).all())


def test_a_message_to_a_service_address_is_stored_before_250(listener, stored, db):
    with client(listener) as smtp:
        smtp.sendmail("coder@clinic.example", ["ask+urgent@mailbot.localhost", "LOOKUP@MAILBOT.LOCALHOST"],
                      crlf(eml("plain_question.eml")))
        code, reply = smtp.noop()
    [inbound_id] = stored.wait(1)
    with db.read() as session:
        row = session.get(InboundMessage, inbound_id)
    assert row.raw == crlf(eml("plain_question.eml"))
    assert row.envelope_from == "coder@clinic.example"
    assert row.envelope_to == ["ask+urgent@mailbot.localhost", "LOOKUP@MAILBOT.LOCALHOST"]
    assert row.source == "smtp" and row.peer == "127.0.0.1" and row.status == "received"
    assert row.message_id == "<CAF1x2=question1@mail.clinic.example>"


def test_the_250_reply_names_the_stored_id(listener, stored):
    with client(listener) as smtp:
        smtp.mail("coder@clinic.example")
        smtp.rcpt("ask@mailbot.localhost")
        code, reply = smtp.data(QUESTION)
    assert code == 250 and reply.decode().endswith(f"#{stored.wait(1)[0]}")


@pytest.mark.parametrize("recipient", [
    "someone@gmail.example",                 # relay attempt
    "root@mailbot.localhost",                # not a service address
    "ask@mailbot.localhost.evil.example",    # look-alike domain
    "ask@evil.example",
])
def test_other_recipients_are_refused_at_rcpt_so_we_never_relay(listener, stored, db, recipient):
    with client(listener) as smtp:
        smtp.mail("spammer@evil.example")
        code, reply = smtp.rcpt(recipient)
        assert code == 550 and b"does not relay" in reply
        code, _ = smtp.rcpt("ask@mailbot.localhost")
        assert code == 250
        code, _ = smtp.data(QUESTION)
        assert code == 250
    with db.read() as session:
        assert session.get(InboundMessage, stored.wait(1)[0]).envelope_to == ["ask@mailbot.localhost"]


def test_the_null_sender_is_accepted_for_the_bounce_address(listener, stored, db):
    with client(listener) as smtp:
        smtp.sendmail("", ["bounces@mailbot.localhost"], crlf(eml("bounce_dsn.eml")))
    with db.read() as session:
        assert session.get(InboundMessage, stored.wait(1)[0]).envelope_from == "<>"


def test_data_without_an_accepted_recipient_is_refused(listener, db):
    with client(listener) as smtp:
        smtp.mail("a@example.org")
        smtp.rcpt("nobody@elsewhere.example")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.data(QUESTION)
    assert refused.value.smtp_code == 503
    assert count(db) == 0


def test_an_oversized_message_gets_552_and_is_not_stored(tmp_path, db, stored):
    ctx = Context(make_settings(tmp_path, db, **{"smtp.max_message_size": 2048}), db=db)
    listener = SmtpListener(ctx, on_stored=stored)
    listener.start()
    try:
        with client(listener) as smtp:
            code, reply = smtp.mail("a@example.org", options=["SIZE=999999"])
            assert code == 552
            smtp.rset()
            smtp.mail("a@example.org")
            smtp.rcpt("ask@mailbot.localhost")
            code, _ = smtp.data(QUESTION + b"x" * 70 + (b"y" * 70 + b"\r\n") * 60)
            assert code == 552
            code, _ = smtp.noop()
            assert code == 250                       # the session survives
    finally:
        listener.stop()
    assert count(db) == 0 and stored == []


def test_nul_bytes_and_overlong_lines_are_refused(listener, db):
    with client(listener) as smtp:
        smtp.mail("a@example.org")
        smtp.rcpt("ask@mailbot.localhost")
        code, _ = smtp.data(QUESTION + b"bad \x00 byte\r\n")
        assert code == 554
        smtp.mail("a@example.org")
        smtp.rcpt("ask@mailbot.localhost")
        code, _ = smtp.data(QUESTION + b"z" * 20_000 + b"\r\n")
        assert code == 500
    assert count(db) == 0


def test_a_smuggled_message_after_a_bare_lf_dot_is_not_a_second_message(listener, stored, db):
    """SMTP smuggling: '\\n.\\r\\n' must not end DATA, so the 'hidden' message
    stays inside the first one and no second message is stored."""
    hidden = (b"From: ceo@mailbot.localhost\r\nSubject: hi\r\n\r\nok\r\n\n.\r\n"
              b"MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<ask@mailbot.localhost>\r\nDATA\r\n"
              b"From: ceo@bank.example\r\nSubject: smuggled\r\n\r\npay now\r\n")
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()
        for line in (b"EHLO x\r\n", b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<ask@mailbot.localhost>\r\n", b"DATA\r\n"):
            sock.sendall(line)
            while True:
                answer = f.readline()
                if answer[3:4] != b"-":
                    break
        sock.sendall(hidden + b".\r\n")
        assert f.readline().startswith(b"250")
        sock.sendall(b"QUIT\r\n")
        f.readline()
    assert len(stored.wait(1)) == 1 and count(db) == 1
    with db.read() as session:
        assert b"pay now" in session.get(InboundMessage, stored[0]).raw


def test_storage_failure_answers_451_and_stores_nothing(listener, stored, db):
    """The table is unavailable (renamed away) while a message arrives: the
    sender is told to retry, and nothing half-stored remains afterwards."""
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE inbound_message RENAME TO inbound_message_away"))
    try:
        with client(listener) as smtp:
            smtp.mail("a@example.org")
            smtp.rcpt("ask@mailbot.localhost")
            code, reply = smtp.data(QUESTION)
        assert code == 451 and b"try again later" in reply
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE inbound_message_away RENAME TO inbound_message"))
    assert stored == [] and count(db) == 0
    with client(listener) as smtp:                  # and it recovers without a restart
        smtp.sendmail("a@example.org", ["ask@mailbot.localhost"], QUESTION)
    assert count(db) == 1


def test_a_database_that_is_gone_answers_451(db_backend, tmp_path):
    database, cleanup = make_database(db_backend, tmp_path, "gone")
    listener = SmtpListener(Context(make_settings(tmp_path, database), db=database), on_stored=StoredIds())
    listener.start()
    try:
        with client(listener) as smtp:
            smtp.sendmail("a@example.org", ["ask@mailbot.localhost"], QUESTION)    # works first
            database.dispose()
            if database.is_sqlite:
                path = database.engine.url.database
                shutil.move(path, path + ".moved")
                import os
                os.mkdir(path)                      # the file is now a directory: cannot open
            else:
                _drop_pg_database(database.engine.url.database)
            smtp.mail("a@example.org")
            smtp.rcpt("ask@mailbot.localhost")
            code, _ = smtp.data(QUESTION.replace(b"<q@", b"<q2@"))
        assert code == 451
    finally:
        listener.stop()
        if database.is_sqlite:
            cleanup()
        else:
            database.dispose()


def test_lmtp_mode_answers_once_per_recipient(tmp_path, db, stored):
    ctx = Context(make_settings(tmp_path, db, **{"smtp.lmtp": True}), db=db)
    listener = SmtpListener(ctx, on_stored=stored)
    listener.start()
    try:
        lmtp = smtplib.LMTP("127.0.0.1", listener.port, timeout=10)
        refused = lmtp.sendmail("a@example.org", ["ask@mailbot.localhost", "jobs@mailbot.localhost"], QUESTION)
        lmtp.quit()
    finally:
        listener.stop()
    assert refused == {}
    with db.read() as session:
        row = session.get(InboundMessage, stored.wait(1)[0])
    assert row.source == "lmtp" and row.envelope_to == ["ask@mailbot.localhost", "jobs@mailbot.localhost"]


def _self_signed(tmp_path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=mailbot.localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_starttls_and_auth_when_configured(tmp_path, db, stored):
    from mailbot.config import load_settings

    cert, key = _self_signed(tmp_path)
    settings = load_settings(path=None, environ={"MAILBOT_SMTP__AUTH_PASSWORD": "s3cret"}, overrides={
        "service.var_dir": str(tmp_path / "var"), "smtp.port": 0, "database.url": db.url,
        "smtp.auth_username": "relay", "smtp.tls_cert": cert, "smtp.tls_key": key, "smtp.require_starttls": True})
    listener = SmtpListener(Context(settings, db=db), on_stored=stored)
    listener.start()
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    try:
        with client(listener) as smtp:
            code, _ = smtp.mail("a@example.org")
            assert code == 530                       # STARTTLS first
            smtp.starttls(context=insecure)
            smtp.ehlo("client.example")
            code, _ = smtp.mail("a@example.org")
            assert code == 530                       # then authentication
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtp.login("relay", "wrong")
        with client(listener) as smtp:
            smtp.starttls(context=insecure)
            smtp.ehlo("client.example")
            smtp.login("relay", "s3cret")
            smtp.sendmail("a@example.org", ["ask@mailbot.localhost"], QUESTION)
    finally:
        listener.stop()
    assert len(stored.wait(1)) == 1


def test_too_many_recipients_are_deferred_with_452(tmp_path, db, stored):
    ctx = Context(make_settings(tmp_path, db, **{"smtp.max_recipients": 2}), db=db)
    listener = SmtpListener(ctx, on_stored=stored)
    listener.start()
    try:
        with client(listener) as smtp:
            smtp.mail("a@example.org")
            codes = [smtp.rcpt(f"ask+{n}@mailbot.localhost")[0] for n in range(3)]
            assert codes == [250, 250, 452]
            code, _ = smtp.data(QUESTION)
            assert code == 250
    finally:
        listener.stop()
    with db.read() as session:
        assert session.get(InboundMessage, stored.wait(1)[0]).envelope_to == [
            "ask+0@mailbot.localhost", "ask+1@mailbot.localhost"]


def test_sessions_are_answered_without_nagle_delay(listener):
    """The listener's sockets say TCP, so asyncio sets TCP_NODELAY on every
    accepted session: a multi-line EHLO answer (one write per line) would
    otherwise wait ~40 ms for the client's delayed ACK on every session."""
    seen: list[int] = []

    async def handle_NOOP(server, session, envelope, arg):  # read by aiosmtpd per session
        sock = server.transport.get_extra_info("socket")
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return "250 OK"

    listener.handler.handle_NOOP = handle_NOOP
    smtp = client(listener)
    try:
        assert smtp.noop()[0] == 250
    finally:
        smtp.quit()
    assert seen and seen[0] != 0
