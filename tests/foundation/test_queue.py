"""Queue wiring: the Redis broker across processes, the embedded worker, the reconciler."""

import os
import signal
import subprocess
import sys
import time
import uuid

import dramatiq
import pytest

import workflows.broker
from mailbot.context import Context, configure
from mailbot.models import OutboundMessage, OutboundState
from mailbot.services import delivery
from tests.conftest import make_settings
from tests.foundation.test_delivery import _message
from tests.support.children import die_with_parent


def _queue(db) -> int:
    with db.session() as session:
        return delivery.queue_message(session, _message(), kind="answer").id


def _wait_sent(db, outbound_id, timeout=60.0) -> OutboundMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as session:
            row = session.get(OutboundMessage, outbound_id)
        if row.state != OutboundState.PENDING:
            return row
        time.sleep(0.1)
    raise AssertionError(f"outbound {outbound_id} still pending after {timeout}s")


@pytest.fixture
def embedded_broker(tmp_path):
    """Whatever a test installs, leave the embedded StubBroker behind."""
    yield
    workflows.broker.install(make_settings(tmp_path))


def test_a_message_enqueued_here_is_processed_by_a_dramatiq_worker_process(tmp_path, db, redis_url, embedded_broker):
    settings = make_settings(tmp_path, db, **{"broker.url": redis_url})
    configure(Context(settings, db=db))
    broker = workflows.broker.install(settings)
    from workflows import actors

    outbound_id = _queue(db)
    actors.send_outbound.send(outbound_id)
    assert broker.client.llen(f"{settings.broker.namespace}:default") >= 1  # waiting in Redis

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")},
           "MAILBOT_DATABASE__URL": db.url, "MAILBOT_BROKER__URL": redis_url,
           "MAILBOT_BROKER__NAMESPACE": settings.broker.namespace,
           "MAILBOT_SERVICE__VAR_DIR": str(tmp_path / "var")}
    worker = subprocess.Popen([sys.executable, "-m", "dramatiq", "workflows.actors", "--processes", "1", "--threads", "1"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              preexec_fn=die_with_parent())
    try:
        row = _wait_sent(db, outbound_id)
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
    assert row.state == OutboundState.SENT, output
    assert row.transport == "outbox"
    assert (tmp_path / "var" / "outbox" / "new").iterdir()


def test_the_embedded_worker_drains_the_in_process_queue(tmp_path, db, embedded_broker):
    settings = make_settings(tmp_path, db)
    ctx = configure(Context(settings, db=db))
    workflows.broker.install(settings)
    from workflows.actors import send_outbound
    from workflows.embedded import start_worker

    worker = start_worker(ctx)
    try:
        outbound_id = _queue(db)
        send_outbound.send(outbound_id)
        assert _wait_sent(db, outbound_id, timeout=20).state == OutboundState.SENT
    finally:
        worker.stop()


def test_the_reconciler_recovers_work_the_queue_lost(tmp_path, db, embedded_broker):
    """A pending message whose queue message vanished (restart of an embedded
    process, Redis flush) is re-enqueued from the database on start-up."""
    settings = make_settings(tmp_path, db)
    ctx = configure(Context(settings, db=db))
    workflows.broker.install(settings)
    from workflows.embedded import start_worker
    from workflows.reconciler import reconcile_once
    from datetime import timedelta

    outbound_id = _queue(db)          # stored, but never enqueued
    worker = start_worker(ctx)
    try:
        assert reconcile_once(ctx, timedelta(0)) >= 1
        assert _wait_sent(db, outbound_id, timeout=20).state == OutboundState.SENT
        # Nothing left to do: a second pass finds nothing.
        dramatiq.get_broker().join("default", timeout=10_000)
        assert reconcile_once(ctx, timedelta(0)) == 0
    finally:
        worker.stop()


def test_a_reply_goes_out_while_every_slow_lane_thread_is_busy(tmp_path, db, embedded_broker):
    """Issue 17, point 15: drafting (the ``slow`` queue) never holds the
    threads that route mail and send replies.  Every slow-lane thread is
    held busy; a reply queued meanwhile is still sent."""
    import threading

    from workflows.broker import SLOW
    from workflows.embedded import start_worker

    settings = make_settings(tmp_path, db)
    ctx = configure(Context(settings, db=db))
    workflows.broker.install(settings)
    release, started = threading.Event(), threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(60)

    # The embedded broker may outlive one parametrised run: a fresh name each time.
    busy = dramatiq.actor(hold, actor_name=f"test_hold_the_slow_lane_{uuid.uuid4().hex}",
                          queue_name=SLOW, max_retries=0)
    worker = start_worker(ctx)
    try:
        for _ in range(settings.broker.embedded_threads):
            busy.send()
        for _ in range(settings.broker.embedded_threads):
            assert started.acquire(timeout=30), "the slow lane did not start its work"
        outbound_id = _queue(db)
        from workflows.actors import send_outbound

        send_outbound.send(outbound_id)
        assert _wait_sent(db, outbound_id, timeout=30).state == OutboundState.SENT
        assert not release.is_set()          # ... while the slow lane was still busy
    finally:
        release.set()
        worker.stop()
