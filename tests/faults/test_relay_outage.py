"""The outbound relay down for a while, then back; and a relay that says no.

Through the real queue (embedded broker, in-process dramatiq worker, as in
``mailbot serve``): while the relay refuses connections and then answers
4xx, replies stay pending and are retried with backoff; when it accepts
again, each goes out exactly once.  A 5xx is permanent: the message is
failed at once (no retry), quarantined, and the reviewer sees it on the
consultation's page.  (The single-451 retry at service level is in
``tests/consultation/test_recovery.py``.)
"""

from __future__ import annotations

import time
from datetime import timedelta

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from mailbot.context import Context, configure
from mailbot.mail import intake
from mailbot.models import Consultation, OutboundMessage, QuarantineItem, Reviewer
from mailbot.services import Poke
from mailbot.services import consultations as svc
from tests.conftest import make_settings
from tests.consultation.drive import question
from tests.faults.conftest import kinds, wait
from tests.support.relay_sink import RelaySink
from tests.web.conftest import SECRET, add_reviewer, sign_in

pytestmark = pytest.mark.faults


@pytest.fixture
def relay():
    """A relay sink that is NOT started: connections are refused until the test starts it."""
    sink = RelaySink()
    yield sink
    if sink.controller._thread is not None:
        sink.controller.stop()


@pytest.fixture
def service(tmp_path, codes_db, db, relay, monkeypatch):
    settings = make_settings(tmp_path, db, **{
        "relay.host": "127.0.0.1", "relay.port": relay.port, "relay.timeout_seconds": 5,
        "relay.max_attempts": 40, "web.session_secret": SECRET})
    ctx = configure(Context(settings, db=db))
    import workflows.broker

    workflows.broker.install(settings)
    import workflows.actors as actors

    # Test-sized backoff: the same retry path, 0.2 s doubling to 1 s instead of 1 s to 5 min.
    monkeypatch.setitem(actors.send_outbound.options, "min_backoff", 200)
    monkeypatch.setitem(actors.send_outbound.options, "max_backoff", 1000)
    # ... and enough retries that a slow (loaded) machine cannot exhaust them during the outage.
    monkeypatch.setitem(actors.send_outbound.options, "max_retries", 100)
    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=2, worker_timeout=50)
    worker.start()
    yield ctx
    worker.stop()
    workflows.broker.install(make_settings(tmp_path))


def _receive(ctx, msg) -> None:
    from workflows.actors import dispatch

    iid = intake.accept(ctx.db, msg.as_bytes(), source="smtp", envelope_from=msg["From"].addresses[0].addr_spec,
                        envelope_to=[msg["To"].addresses[0].addr_spec])
    dispatch([Poke("process_inbound", iid)])


def _outbound(db) -> list[OutboundMessage]:
    with db.read() as session:
        return list(session.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all())


def _consultation(db) -> Consultation:
    with db.read() as session:
        return session.exec(select(Consultation)).one()


def _state(db) -> str:
    with db.read() as session:
        found = session.exec(select(Consultation)).first()
    return found.state if found else ""


def _reviewer(db) -> Reviewer:
    return add_reviewer(db, "cora@coders.example", "Cora Reyes")


def test_replies_wait_while_the_relay_refuses_then_answers_4xx_and_go_out_once(service, relay, db):
    ctx = service
    from workflows.actors import dispatch
    from workflows.reconciler import reconcile_once

    # Given: the relay refuses connections; a question and a LOOKUP arrive.
    _receive(ctx, question("Knee", "Can 20610 and 99213 be billed together?", message_id="<q-relay@faults.example>"))
    _receive(ctx, question("LOOKUP 99213", "", from_addr="looker@faults.example", message_id="<l-relay@faults.example>",
                           to="lookup@mailbot.localhost"))
    wait(lambda: _state(db) == "awaiting_review", "the draft")
    # (an attempt is counted when it is claimed, before its failure is
    # recorded: wait for the recorded failure, not only the count)
    wait(lambda: len(_outbound(db)) == 2 and all(o.attempts >= 2 and "unreachable" in o.last_error
                                                 for o in _outbound(db)),
         "ack and lookup reply to be retried")
    assert all(o.state == "pending" and o.next_attempt_at for o in _outbound(db))
    c = _consultation(db)
    reviewer = _reviewer(db)
    dispatch(svc.approve(ctx, c.id, reviewer.id, "20610 and 99213-25 may be billed together.", c.version))

    # When: the relay comes back answering 451, then accepts.
    relay.answer("451 4.3.0 try again later")
    relay.controller.start()
    wait(lambda: len(_outbound(db)) == 3 and all("451" in o.last_error for o in _outbound(db)),
         "every reply to get a 451", timeout=30)
    assert relay.messages == [] and {o.state for o in _outbound(db)} == {"pending"}
    relay.answer(None)
    wait(lambda: len(relay.messages) >= 3, "the replies after the outage", timeout=30)
    reconcile_once(ctx, timedelta(0))          # what the periodic reconciler does
    wait(lambda: _consultation(db).state == "sent", "the consultation to be marked sent", timeout=20)
    time.sleep(1.0)                            # late duplicates would arrive now

    # Then: each reply exactly once; nothing failed or quarantined.
    assert sorted(kinds(relay)) == ["ack", "answer", "lookup"]
    outbound = _outbound(db)
    assert {o.state for o in outbound} == {"sent"} and all(o.attempts >= 2 for o in outbound)
    with db.read() as session:
        assert session.exec(select(QuarantineItem)).all() == []


def test_a_5xx_is_a_permanent_failure_the_reviewer_sees(service, relay, db):
    ctx = service
    from workflows.actors import dispatch

    relay.answer("550 5.1.1 <casey@example.org>: no such user")
    relay.controller.start()
    _receive(ctx, question("Knee", "Can 20610 and 99213 be billed together?", message_id="<q-550@faults.example>"))
    wait(lambda: _state(db) == "awaiting_review", "the draft")
    wait(lambda: [o.state for o in _outbound(db)] == ["failed"], "the ack to fail")
    c = _consultation(db)
    reviewer = _reviewer(db)
    dispatch(svc.approve(ctx, c.id, reviewer.id, "20610 and 99213-25 may be billed together.", c.version))
    wait(lambda: _consultation(db).state == "failed", "the consultation to show the failure", timeout=20)

    # Permanent: one attempt each, never retried, nothing delivered.
    time.sleep(0.5)
    outbound = _outbound(db)
    assert [(o.kind, o.state, o.attempts) for o in outbound] == [("ack", "failed", 1), ("answer", "failed", 1)]
    assert all("550" in o.last_error for o in outbound) and relay.messages == []
    with db.read() as session:
        items = session.exec(select(QuarantineItem).where(QuarantineItem.kind == "outbound")).all()
    assert sorted(i.ref_id for i in items) == [o.id for o in outbound]
    assert all("permanent delivery failure" in i.reason for i in items)
    assert "550" in _consultation(db).failure_reason

    # The reviewer sees it: the consultation page says failed, next to the answer that was not delivered.
    from reviewers.app import create_app

    with TestClient(create_app(ctx), base_url="http://testserver", follow_redirects=False) as client:
        sign_in(client, reviewer)
        page = client.get(f"/consultations/{c.id}")
    assert page.status_code == 200
    assert "state <b>failed</b>" in page.text
    assert "answer (failed)" in page.text and "ack (failed)" in page.text
    assert "no such user" in page.text      # why, not only that it failed


def test_regression_the_detail_page_did_not_say_why_a_consultation_failed(service, db):
    """Bug: a failed consultation showed only "state failed"; the reason
    (the relay's 5xx, the LLM error) was stored but never shown."""
    from reviewers.app import create_app
    from tests.web.conftest import seed_consultation

    cid = seed_consultation(db, state="failed")
    with db.session() as session:
        c = session.get(Consultation, cid)
        c.failure_reason = "answer could not be delivered: relay answered 550 5.7.1 <x@y.example> & rejected"
        session.add(c)
    reviewer = _reviewer(db)
    with TestClient(create_app(service), base_url="http://testserver", follow_redirects=False) as client:
        sign_in(client, reviewer)
        page = client.get(f"/consultations/{cid}")
    assert 'id="failure-reason">answer could not be delivered: relay answered 550 5.7.1 &lt;x@y.example&gt; &amp; rejected' in page.text
