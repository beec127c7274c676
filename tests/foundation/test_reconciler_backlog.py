"""The reconciler re-pokes what is really stuck, not what is merely waiting:
a row whose message is still queued (a long backlog) is left alone however
old it is; a row whose message the queue lost is re-poked, once, even with
several reconcilers running."""

import uuid
from datetime import timedelta

import pytest

import workflows.broker
from mailbot.context import Context, configure
from tests.conftest import make_settings
from mailbot.services import delivery
from tests.foundation.test_delivery import _message


def _queue(db) -> int:
    """A pending reply, stored but not yet poked."""
    msg = _message()
    msg.replace_header("Message-ID", f"<backlog-{uuid.uuid4().hex}@mailbot.localhost>")
    with db.session() as session:
        return delivery.queue_message(session, msg, kind="answer").id


@pytest.fixture
def embedded_broker(tmp_path):
    yield
    workflows.broker.install(make_settings(tmp_path))


@pytest.fixture(params=["embedded", "redis"])
def broker_ctx(request, tmp_path, db, embedded_broker):
    overrides = {"broker.url": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    namespace = f"mailbot-test-recon-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path, db, **{**overrides, "broker.namespace": namespace})
    ctx = configure(Context(settings, db=db))
    broker = workflows.broker.install(settings)
    import workflows.actors as _declare  # noqa: F401  (declare the actors on this broker)

    yield ctx, broker
    broker.flush_all()
    if request.param == "redis":
        for key in broker.client.scan_iter(f"{namespace}*"):
            broker.client.delete(key)


def test_a_queued_backlog_is_not_re_poked_but_a_lost_poke_is(broker_ctx):
    from workflows import actors
    from workflows.reconciler import held, reconcile_once

    ctx, broker = broker_ctx
    # Given: two replies waiting behind a backlog (their pokes are queued, no
    # worker runs) and one whose poke was lost.
    waiting = [_queue(ctx.db), _queue(ctx.db)]
    for outbound_id in waiting:
        actors.send_outbound.send(outbound_id)
    lost = _queue(ctx.db)
    assert {("send_outbound", i) for i in waiting} <= held(broker)
    # When: the reconciler runs (any age counts as stuck here).
    assert reconcile_once(ctx, timedelta(0)) == 1
    # Then: only the lost one was poked; the queue holds one message per row.
    assert held(broker) >= {("send_outbound", i) for i in [*waiting, lost]}
    # And a second pass (another worker's reconciler) finds nothing to add.
    assert reconcile_once(ctx, timedelta(0)) == 0


def test_after_the_queue_is_lost_everything_unfinished_is_re_poked(broker_ctx):
    from workflows import actors
    from workflows.reconciler import held, reconcile_once

    ctx, broker = broker_ctx
    rows = [_queue(ctx.db) for _ in range(3)]
    for outbound_id in rows:
        actors.send_outbound.send(outbound_id)
    broker.flush_all()                   # a Redis restart without persistence, an embedded restart
    assert held(broker) == set()
    assert reconcile_once(ctx, timedelta(0)) == 3
    assert {("send_outbound", i) for i in rows} <= held(broker)


def test_batch_messages_count_for_each_of_their_rows(broker_ctx):
    from workflows import actors
    from workflows.reconciler import _not_held, held
    from mailbot.services import Poke

    ctx, broker = broker_ctx
    actors.deliver_batch.send([11, 12])
    assert {("send_outbound", 11), ("send_outbound", 12)} <= held(broker)
    assert _not_held([Poke("send_outbound", 11), Poke("send_outbound", 13), Poke("deliver_batch", [12, 14])],
                     held(broker)) == [Poke("send_outbound", 13), Poke("deliver_batch", [14])]
