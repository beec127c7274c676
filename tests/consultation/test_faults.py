"""A worker killed mid-draft or mid-send still ends with exactly one reply.

The worker is a real ``dramatiq workflows.actors`` process on Redis, killed
with SIGKILL while the fake LLM (mid-draft) or the relay (mid-send) is
deliberately slow; a new worker plus the reconciler finish the work.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import select

from mailbot.context import Context, configure
from mailbot.mail import intake
from mailbot.models import Consultation, Draft, utcnow
from mailbot.services import Poke
from mailbot.services import consultations as svc
from tests.conftest import RUN_ID, make_settings
from tests.consultation.conftest import consult_settings
from tests.consultation.drive import question
from tests.support import relay_sink
from tests.support.children import die_with_parent
from tests.support.fake_llm import FakeLlm

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
ANSWER = {"answer": "20610 with 99213-25 is fine when separately identifiable.",
          "cited_codes": [{"code": "20610", "role": "recommended"}], "confidence": 0.7, "questions": []}


class _SlowHandler(relay_sink._Handler):
    """Accepts like the relay sink, but can stall at RCPT (before any data)."""

    rcpt_delay: float = 0.0
    in_rcpt: threading.Event

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_delay:
            self.in_rcpt.set()
            await asyncio.sleep(self.rcpt_delay)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


class SlowSink(relay_sink.RelaySink):
    def __init__(self) -> None:
        super().__init__()
        self.handler = _SlowHandler()
        self.handler.in_rcpt = threading.Event()
        self.controller.handler = self.handler


def _env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update({
        "PYTHONPATH": str(REPO),
        "MAILBOT_DATABASE__URL": settings.database_url,
        "MAILBOT_BROKER__URL": settings.broker.url,
        "MAILBOT_BROKER__NAMESPACE": settings.broker.namespace,
        "MAILBOT_SERVICE__VAR_DIR": str(settings.service.var_dir),
        "MAILBOT_RELAY__HOST": settings.relay.host,
        "MAILBOT_RELAY__PORT": str(settings.relay.port),
        "MAILBOT_LLM__BASE_URL": settings.llm.base_url,
        "MAILBOT_LLM__MODEL": settings.llm.model,
        "MAILBOT_LLM__TIMEOUT_SECONDS": str(settings.llm.timeout_seconds),
        "MAILBOT_LLM__MAX_RETRIES": "0",
    })
    return env


class Worker:
    def __init__(self, settings, log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "workflows.actors", "--processes", "1", "--threads", "2"],
            cwd=log.parent, env=_env(settings), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent())

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()


def wait(predicate, what: str, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def state(db) -> str:
    with db.read() as session:
        found = session.exec(select(Consultation)).first()
    return found.state if found else ""


@pytest.fixture
def slow_sink():
    with SlowSink() as sink:
        yield sink


@pytest.fixture
def setup(tmp_path, codes_db, db, slow_sink, llm, redis_url):
    settings = consult_settings(tmp_path, db, slow_sink, llm, **{
        "broker.url": redis_url, "broker.namespace": f"mailbot-test-{RUN_ID}-faults-{uuid.uuid4().hex[:8]}",
        "llm.timeout_seconds": 30})
    ctx = configure(Context(settings, db=db))
    import workflows.broker

    workflows.broker.install(settings)
    from workflows.actors import dispatch

    workers: list[Worker] = []

    def start() -> Worker:
        workers.append(Worker(settings, tmp_path / "worker.log"))
        return workers[-1]

    yield ctx, dispatch, start
    for w in workers:
        w.kill()
    workflows.broker.install(make_settings(tmp_path))


def _ask(ctx, dispatch) -> None:
    msg = question("Knee", "Can 20610 and 99213 go together? DOS 03/15/2026", message_id="<fault@example.org>")
    iid = intake.accept(ctx.db, msg.as_bytes(), source="smtp", envelope_from="casey@example.org",
                        envelope_to=["ask@mailbot.localhost"])
    dispatch([Poke("process_inbound", iid)])


def _reconcile(ctx) -> None:
    from workflows.reconciler import reconcile_once

    reconcile_once(ctx, timedelta(0))


def _answers(sink) -> list:
    return [m for m in sink.messages if m.message["X-Mailbot-Kind"] == "answer"]


def test_a_worker_killed_mid_draft_ends_with_one_draft_and_one_reply(setup, llm, slow_sink, reviewer, db):
    ctx, dispatch, start = setup
    llm.script(FakeLlm.delay(25, FakeLlm.json(ANSWER)), FakeLlm.json(ANSWER))
    _ask(ctx, dispatch)
    first = start()
    wait(lambda: state(db) == "drafting" and len(llm.requests) == 1, "the draft to start")
    first.kill()
    # The dead worker's attempt holds a lease as long as an LLM call may
    # take; let that time pass.
    with db.session() as session:
        session.exec(update(Consultation).values(state_changed_at=utcnow() - timedelta(hours=1)))

    start()
    _reconcile(ctx)
    wait(lambda: state(db) == "awaiting_review", "the draft after restart")
    with db.read() as session:
        c = session.exec(select(Consultation)).one()
        assert len(session.exec(select(Draft)).all()) == 1
    dispatch(svc.approve(ctx, c.id, reviewer, ANSWER["answer"], c.version))
    wait(lambda: state(db) == "sent", "the answer to be sent")
    time.sleep(1.0)
    assert len(_answers(slow_sink)) == 1
    assert [m.message["X-Mailbot-Kind"] for m in slow_sink.messages].count("ack") == 1


def test_a_worker_killed_mid_send_ends_with_exactly_one_reply(setup, llm, slow_sink, reviewer, db):
    ctx, dispatch, start = setup
    llm.script(FakeLlm.json(ANSWER))
    _ask(ctx, dispatch)
    first = start()
    wait(lambda: state(db) == "awaiting_review", "the draft")
    wait(lambda: len(slow_sink.messages) == 1, "the acknowledgement")
    with db.read() as session:
        c = session.exec(select(Consultation)).one()

    slow_sink.handler.rcpt_delay = 30.0
    dispatch(svc.approve(ctx, c.id, reviewer, ANSWER["answer"], c.version))
    wait(lambda: slow_sink.handler.in_rcpt.is_set(), "the relay conversation to start")
    first.kill()
    slow_sink.handler.rcpt_delay = 0.0

    start()
    _reconcile(ctx)
    wait(lambda: state(db) == "sent", "the answer after restart")
    time.sleep(1.0)
    assert len(_answers(slow_sink)) == 1
