"""The run_command actor: sends the reply at once, falls back to the retrying
send actor when the relay refuses, and never replies twice."""

from __future__ import annotations

import dramatiq
import pytest

from mailbot.context import Context, configure
from mailbot.models import OutboundState
from tests.commands.support import replies, routed_command
from tests.conftest import make_settings
from tests.support.relay_sink import RelaySink


@pytest.fixture
def relay():
    with RelaySink() as sink:
        yield sink


@pytest.fixture
def relay_ctx(tmp_path, db, relay) -> Context:
    return configure(Context(make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": relay.port}),
                             db=db))


@pytest.fixture
def actor(relay_ctx):
    import workflows.broker

    workflows.broker.install(relay_ctx.settings)   # the embedded (stub) broker: nothing leaves the process
    from workflows.commands import run_command

    yield run_command
    dramatiq.get_broker().flush_all()


def test_the_reply_goes_to_the_relay_without_another_queue_hop(actor, relay, db):
    inbound_id = routed_command(db, "HELP", "")
    actor.fn(inbound_id)
    [received] = relay.wait_for(1)
    assert received.recipients == ["coder@example.org"]
    [row] = replies(db, inbound_id)
    assert row.state == OutboundState.SENT
    assert dramatiq.get_broker().queues["default"].qsize() == 0


def test_running_the_actor_twice_sends_one_reply(actor, relay, db):
    inbound_id = routed_command(db, "HELP", "")
    actor.fn(inbound_id)
    actor.fn(inbound_id)
    assert len(relay.wait_for(1)) == 1 and len(replies(db, inbound_id)) == 1


def test_a_refusing_relay_leaves_the_reply_to_the_retrying_send_actor(actor, relay, db):
    relay.answer("451 4.3.0 try again later")
    inbound_id = routed_command(db, "HELP", "")
    actor.fn(inbound_id)
    [row] = replies(db, inbound_id)
    assert row.state == OutboundState.PENDING and "451" in row.last_error
    queued = dramatiq.get_broker().queues["default"]
    assert queued.qsize() == 1
    message = dramatiq.Message.decode(queued.get())
    assert message.actor_name == "send_outbound" and message.args == (row.id,)
