"""Issue 17, point 8: a kill between handing a reply over and marking it sent.

The sending process is SIGKILLed right after its "mark sent" statement ran
and before the commit (``die_mid_transaction.py deliver``), so the row is
still ``pending`` although the message went out; the retry (what the
reconciler does) must then not write it twice to the Maildir outbox.  An
SMTP relay cannot be asked whether it has a message already: there the
retry sends it again -- the one documented duplicate window -- and says so
in ``last_error``.  Two workers poked for the same row at once never both
send it.
"""

from __future__ import annotations

import mailbox
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mailbot.context import Context
from mailbot.mail.compose import Envelope, Rendered, build
from mailbot.models import OutboundMessage
from mailbot.services import delivery
from tests.conftest import make_settings
from tests.faults.conftest import service_env

pytestmark = pytest.mark.faults

SCRIPT = Path(__file__).with_name("die_mid_transaction.py")
MARK_SENT = "UPDATE outbound_message SET state"


def queue_reply(ctx: Context, n: int = 1) -> int:
    message = build(Rendered(f"Re: question {n}", "Your answer.", None),
                    Envelope(to="coder@clinic.example", from_addr="ask@mailbot.localhost"),
                    domain="mailbot.localhost", kind="ack")
    with ctx.db.session() as session:
        return delivery.queue_message(session, message, kind="ack").id


def row(ctx: Context, outbound_id: int) -> OutboundMessage:
    with ctx.db.read() as session:
        return session.get(OutboundMessage, outbound_id)


def die_after_sending(ctx: Context, tmp_path, outbound_id: int) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "deliver", str(outbound_id), MARK_SENT],
                            env=service_env(ctx.settings), cwd=tmp_path, capture_output=True, timeout=120)
    assert result.returncode == -9, result.stderr.decode()[-3000:]


def outbox(ctx: Context) -> list[mailbox.MaildirMessage]:
    return list(mailbox.Maildir(ctx.settings.outbox_path, create=False))


def test_a_kill_after_writing_to_the_maildir_does_not_write_the_reply_twice(tmp_path, db):
    ctx = Context(make_settings(tmp_path, db), db=db)
    outbound_id = queue_reply(ctx)
    die_after_sending(ctx, tmp_path, outbound_id)
    assert row(ctx, outbound_id).state == "pending"          # the kill hit before "sent" was committed
    assert len(outbox(ctx)) == 1                              # ... after the file was written
    assert delivery.deliver(ctx, outbound_id) == "sent"       # the reconciler's retry
    assert len(outbox(ctx)) == 1                              # exactly once
    assert row(ctx, outbound_id).state == "sent"
    assert delivery.deliver(ctx, outbound_id) == "skipped"


def test_a_reply_already_read_from_the_outbox_is_not_written_again(tmp_path, db):
    ctx = Context(make_settings(tmp_path, db), db=db)
    outbound_id = queue_reply(ctx)
    die_after_sending(ctx, tmp_path, outbound_id)
    box = mailbox.Maildir(ctx.settings.outbox_path, create=False)
    for key in list(box.keys()):                              # a reader moves it to cur/ and flags it
        message = box[key]
        message.set_subdir("cur")
        message.add_flag("S")
        box[key] = message
    assert delivery.deliver(ctx, outbound_id) == "sent"
    assert len(outbox(ctx)) == 1


def test_a_kill_after_the_relay_accepted_sends_once_more_and_says_so(tmp_path, db, sink):
    """The remaining window (docs/security.md): after the relay's 250 and
    before our commit.  The retry is recorded as a possible duplicate."""
    ctx = Context(make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": sink.port}), db=db)
    outbound_id = queue_reply(ctx)
    die_after_sending(ctx, tmp_path, outbound_id)
    assert len(sink.wait_for(1)) == 1
    assert "sending: attempt 1" in row(ctx, outbound_id).last_error
    assert delivery._claim(ctx, outbound_id) is not None      # what the retry records before sending
    assert "the previous attempt did not finish" in row(ctx, outbound_id).last_error
    assert delivery.deliver(ctx, outbound_id) == "sent"
    messages = sink.wait_for(2)
    assert len(messages) == 2                                 # at most this one duplicate ...
    assert len({m.message["Message-ID"] for m in messages}) == 1   # ... with the same Message-ID
    assert row(ctx, outbound_id).state == "sent" and row(ctx, outbound_id).attempts == 3


def test_two_workers_poked_for_the_same_reply_send_it_once(tmp_path, db, sink):
    ctx = Context(make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": sink.port}), db=db)
    ids = [queue_reply(ctx, n) for n in range(20)]
    results: list[str] = []

    def worker() -> None:
        for outbound_id in ids:
            results.append(delivery.deliver(ctx, outbound_id))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results.count("sent") == 20
    assert len(sink.wait_for(20)) == 20
    assert all(row(ctx, i).state == "sent" for i in ids)
