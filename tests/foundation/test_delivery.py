"""Outbound delivery: relay or Maildir outbox, exactly once, clear failures."""

import mailbox
from email.message import EmailMessage

import pytest
from sqlmodel import select

from mailbot.context import Context
from mailbot.models import OutboundMessage, OutboundState, QuarantineItem
from mailbot.services import delivery
from tests.conftest import make_settings
from tests.support.net import free_port
from tests.support.relay_sink import RelaySink


def _message(to="coder@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "ask@mailbot.localhost"
    msg["To"] = to
    msg["Subject"] = "Re: modifier 25 [#Q-7]"
    msg["Message-ID"] = "<test-1@mailbot.localhost>"
    msg.set_content("Answer text.")
    return msg


def _queue(db) -> int:
    with db.session() as session:
        return delivery.queue_message(session, _message(), kind="answer").id


def _state(db, outbound_id):
    with db.read() as session:
        return session.get(OutboundMessage, outbound_id)


@pytest.fixture
def relay():
    with RelaySink() as sink:
        yield sink


def _relay_ctx(tmp_path, db, port) -> Context:
    return Context(make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": port}), db=db)


def test_without_a_relay_mail_lands_in_a_maildir_outbox(tmp_path, db):
    ctx = Context(make_settings(tmp_path, db), db=db)
    outbound_id = _queue(db)
    assert delivery.deliver(ctx, outbound_id) == "sent"
    box = mailbox.Maildir(ctx.settings.outbox_path, create=False)
    [stored] = list(box)
    assert stored["Message-ID"] == "<test-1@mailbot.localhost>"
    assert stored["X-Envelope-From"] == delivery.verp_address(ctx.settings, outbound_id, "<test-1@mailbot.localhost>")
    row = _state(db, outbound_id)
    assert row.state == OutboundState.SENT and row.transport == "outbox"


def test_a_message_is_sent_once_even_when_delivered_twice(tmp_path, db, relay):
    ctx = _relay_ctx(tmp_path, db, relay.port)
    outbound_id = _queue(db)
    assert delivery.deliver(ctx, outbound_id) == "sent"
    assert delivery.deliver(ctx, outbound_id) == "skipped"
    assert len(relay.wait_for(1)) == 1
    assert relay.messages[0].envelope_from == delivery.verp_address(ctx.settings, outbound_id, "<test-1@mailbot.localhost>")


def test_a_4xx_answer_is_retried_later_and_the_message_stays_pending(tmp_path, db, relay):
    ctx = _relay_ctx(tmp_path, db, relay.port)
    outbound_id = _queue(db)
    relay.answer("451 4.3.0 try again later")
    with pytest.raises(delivery.RetryLater):
        delivery.deliver(ctx, outbound_id)
    row = _state(db, outbound_id)
    assert row.state == OutboundState.PENDING and "451" in row.last_error and row.next_attempt_at
    relay.answer(None)
    assert delivery.deliver(ctx, outbound_id) == "sent"
    assert len(relay.messages) == 1


def test_a_refused_connection_is_temporary(tmp_path, db):
    ctx = _relay_ctx(tmp_path, db, free_port())
    outbound_id = _queue(db)
    with pytest.raises(delivery.RetryLater):
        delivery.deliver(ctx, outbound_id)
    assert _state(db, outbound_id).state == OutboundState.PENDING


def test_a_5xx_answer_is_a_visible_permanent_failure(tmp_path, db, relay):
    ctx = _relay_ctx(tmp_path, db, relay.port)
    outbound_id = _queue(db)
    relay.answer("550 5.1.1 no such user")
    assert delivery.deliver(ctx, outbound_id) == "failed"
    assert _state(db, outbound_id).state == OutboundState.FAILED
    with db.read() as session:
        [item] = session.exec(select(QuarantineItem)).all()
    assert item.kind == "outbound" and item.ref_id == outbound_id and "550" in item.reason


def test_giving_up_after_max_attempts_is_visible(tmp_path, db, relay):
    ctx = Context(make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": relay.port,
                                                 "relay.max_attempts": 2}), db=db)
    outbound_id = _queue(db)
    relay.answer("421 4.7.0 busy")
    with pytest.raises(delivery.RetryLater):
        delivery.deliver(ctx, outbound_id)
    assert delivery.deliver(ctx, outbound_id) == "failed"
    assert _state(db, outbound_id).state == OutboundState.FAILED


def _queue_claimed(db) -> int:
    message = _message()
    with db.begin() as conn:
        return delivery.queue_reply(conn, message, bytes(message), kind="lookup", claimed=True)


def test_a_reply_queued_claimed_is_sent_once_at_its_first_attempt(tmp_path, db, relay):
    """Issue 16: the command path queues its reply with the first attempt
    claimed and sends it right after the commit -- still exactly once."""
    ctx = _relay_ctx(tmp_path, db, relay.port)
    outbound_id = _queue_claimed(db)
    queued = _state(db, outbound_id)
    assert queued.state == OutboundState.PENDING and queued.attempts == 1
    assert queued.last_error.startswith("sending: attempt 1 started")
    assert delivery.deliver(ctx, outbound_id, claimed=True) == "sent"
    assert delivery.deliver(ctx, outbound_id, claimed=True) == "skipped"
    assert delivery.deliver(ctx, outbound_id) == "skipped"
    assert len(relay.wait_for(1)) == 1
    sent = _state(db, outbound_id)
    assert sent.state == OutboundState.SENT and sent.attempts == 1 and sent.last_error == ""


def test_a_claimed_reply_another_attempt_took_over_is_not_sent_again(tmp_path, db, relay):
    ctx = _relay_ctx(tmp_path, db, relay.port)
    outbound_id = _queue_claimed(db)
    assert delivery.deliver(ctx, outbound_id) == "sent"          # e.g. the reconciler's poke got there first
    assert delivery.deliver(ctx, outbound_id, claimed=True) == "skipped"
    assert len(relay.wait_for(1)) == 1
    assert _state(db, outbound_id).attempts == 2


def test_a_claimed_reply_never_sent_goes_out_on_the_retry_and_says_so(tmp_path, db, relay):
    """The process died between queueing (claimed) and sending: the retry
    sends it and records that the first attempt did not finish."""
    ctx = _relay_ctx(tmp_path, db, relay.port)
    outbound_id = _queue_claimed(db)
    assert delivery._claim(ctx, outbound_id) is not None
    assert "the previous attempt did not finish" in _state(db, outbound_id).last_error
    assert delivery.deliver(ctx, outbound_id) == "sent"
    assert len(relay.wait_for(1)) == 1
    assert _state(db, outbound_id).state == OutboundState.SENT


def test_a_4xx_on_a_claimed_reply_leaves_it_pending_for_the_retry(tmp_path, db, relay):
    ctx = _relay_ctx(tmp_path, db, relay.port)
    outbound_id = _queue_claimed(db)
    relay.answer("451 4.3.0 try later")
    with pytest.raises(delivery.RetryLater):
        delivery.deliver(ctx, outbound_id, claimed=True)
    row = _state(db, outbound_id)
    assert row.state == OutboundState.PENDING and "451" in row.last_error and row.next_attempt_at is not None
    relay.answer(None)
    assert delivery.deliver(ctx, outbound_id) == "sent"
    assert len(relay.wait_for(1)) == 1
