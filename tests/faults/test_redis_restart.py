"""Redis restarted with its data lost while work is queued.

Messages are stored and their pokes queued on a private Redis with no
worker running -- some still waiting to be routed, some already routed into
a consultation or a command whose next poke is queued.  Redis is then killed
with SIGKILL and a fresh, empty one started on the same port.  A
``mailbot worker`` (dramatiq worker + reconciler) started afterwards finds
everything unfinished in the database and finishes it exactly once: one
acknowledgement and one draft per question, one reply per LOOKUP.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlmodel import select

from mailbot.context import Context, configure
from mailbot.mail import intake
from mailbot.models import Consultation, Draft, InboundMessage, OutboundMessage
from mailbot.services import Poke, inbound
from tests.conftest import make_settings
from tests.consultation.drive import question
from tests.faults.conftest import kinds, replies_to, wait

pytestmark = pytest.mark.faults

QUESTIONS = 4
LOOKUPS = 4


def _send(ctx, n: int, kind: str) -> tuple[int, str]:
    message_id = f"<redis-{kind}-{n}@faults.example>"
    if kind == "question":
        msg = question(f"Knee question {n}", f"Can 20610 and 99213 be billed together? case {n}",
                       from_addr=f"asker{n}@faults.example", message_id=message_id)
    else:
        msg = question("LOOKUP 99213 E11.22", "", from_addr=f"looker{n}@faults.example",
                       message_id=message_id, to="lookup@mailbot.localhost")
    iid = intake.accept(ctx.db, msg.as_bytes(), source="smtp", envelope_from=msg["From"].addresses[0].addr_spec,
                        envelope_to=[msg["To"].addresses[0].addr_spec])
    return iid, message_id


def _queued(broker) -> int:
    """Messages waiting, delayed or in flight on the default queue."""
    return broker.do_qsize("default")


@pytest.fixture
def on_private_redis(tmp_path, codes_db, db, own_redis, sink):
    settings = make_settings(tmp_path, db, **{"broker.url": own_redis.url, "relay.host": "127.0.0.1",
                                              "relay.port": sink.port})
    ctx = configure(Context(settings, db=db))
    import workflows.broker

    broker = workflows.broker.install(settings)
    import workflows.actors  # noqa: F401  (declare the actors on this broker)

    yield ctx, broker
    workflows.broker.install(make_settings(tmp_path))


def test_a_redis_restart_that_loses_the_queue_is_recovered_exactly_once(
        tmp_path, on_private_redis, own_redis, sink, db, processes):
    ctx, broker = on_private_redis
    from workflows.actors import dispatch

    # Given: work queued on Redis and no worker -- half of the messages only
    # stored (their routing poke is queued), half routed already (the
    # consultation/command exists; its next poke is queued).
    asked = []
    for n in range(QUESTIONS + LOOKUPS):
        iid, message_id = _send(ctx, n, "question" if n < QUESTIONS else "lookup")
        asked.append(message_id)
        dispatch(inbound.process(ctx, iid) if n % 2 else [Poke("process_inbound", iid)])
    assert _queued(broker) > 0

    # When: Redis dies with its data and an empty one takes its place.
    own_redis.kill9()
    own_redis.start()
    broker.client.connection_pool.disconnect()
    assert _queued(broker) == 0

    # ... and a worker starts: its reconciler finds the unfinished work.
    processes("worker", ctx.settings, tmp_path / "worker.log")

    def finished() -> bool:
        with db.read() as session:
            states = session.exec(select(Consultation.state)).all()
        return (len(states) == QUESTIONS and set(states) == {"awaiting_review"}
                and len(sink.messages) == QUESTIONS + LOOKUPS)

    wait(finished, "every question drafted and every message answered", timeout=60)

    # A second reconcile pass (as the periodic one would) pokes nothing new
    # into a reply: the actors are idempotent.
    from workflows.reconciler import reconcile_once

    reconcile_once(ctx, timedelta(0))
    time.sleep(1.5)
    wait(lambda: _queued(broker) == 0, "the queue to drain", timeout=20)

    # Then: nothing lost, nothing twice.
    assert sorted(kinds(sink)) == sorted(["ack"] * QUESTIONS + ["lookup"] * LOOKUPS)
    assert replies_to(sink) == {message_id: 1 for message_id in asked}
    with db.read() as session:
        assert set(session.exec(select(InboundMessage.status)).all()) == {"processed"}
        assert len(session.exec(select(Draft)).all()) == QUESTIONS
        outbound = session.exec(select(OutboundMessage)).all()
    assert len(outbound) == QUESTIONS + LOOKUPS and {o.state for o in outbound} == {"sent"}
