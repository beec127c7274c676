"""An LLM endpoint in trouble, seen from the reviewer's chair.

The client-level cases (429/500 retried, timeouts, garbage, schema errors)
are in ``tests/drafting/test_llm.py`` and the offline fall-back at service
level in ``tests/consultation/test_pipeline.py``.  This test mixes them in
one consultation through the real queue (embedded broker, in-process
worker) and checks what a logged-in reviewer sees on the web detail page:
429, then 500, then a timeout exhaust the retries -> an offline draft,
labelled with the reason, with "regenerate" offered; regenerating while the
model answers garbage -> offline again, saying why; regenerating when it is
healthy -> the model's draft.  Nothing reaches the asker but the
acknowledgement until the reviewer approves, and then exactly one answer.
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
from mailbot.models import Consultation, Draft, QuarantineItem
from mailbot.services import Poke
from tests.conftest import make_settings
from tests.consultation.drive import question
from tests.faults.conftest import kinds, wait
from tests.support.fake_llm import FakeLlm
from tests.web.conftest import SECRET, add_reviewer, csrf_from, sign_in

pytestmark = pytest.mark.faults

GOOD = {"answer": "Yes: 20610 with 99213-25 when the E/M is significant and separately identifiable.",
        "cited_codes": [{"code": "20610", "role": "recommended"}, {"code": "99213", "role": "recommended"}],
        "confidence": 0.8, "questions": []}


@pytest.fixture
def service(tmp_path, codes_db, db, sink, llm):
    settings = make_settings(tmp_path, db, **{
        "relay.host": "127.0.0.1", "relay.port": sink.port, "web.session_secret": SECRET,
        "llm.base_url": llm.base_url, "llm.model": "fake-model", "llm.timeout_seconds": 1.0,
        "llm.max_retries": 2})
    ctx = configure(Context(settings, db=db))
    import workflows.broker

    workflows.broker.install(settings)
    import workflows.actors  # noqa: F401

    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=2, worker_timeout=50)
    worker.start()
    yield ctx
    worker.stop()
    workflows.broker.install(make_settings(tmp_path))


def _drafts(db) -> list[Draft]:
    with db.read() as session:
        return list(session.exec(select(Draft).order_by(Draft.id)).all())


def _state(db) -> str:
    with db.read() as session:
        found = session.exec(select(Consultation)).first()
    return found.state if found else ""


def test_an_llm_in_trouble_gives_the_reviewer_a_labelled_offline_draft_then_the_models(service, llm, sink, db):
    ctx = service
    from reviewers.app import create_app
    from workflows.actors import dispatch
    from workflows.reconciler import reconcile_once

    # Given: the model answers 429, then 500, then too slowly -- every try the client has.
    llm.script(FakeLlm.status(429), FakeLlm.status(500), FakeLlm.delay(3.0, FakeLlm.json(GOOD)))
    msg = question("Knee injection", "Can 20610 and 99213 be billed together? DOS 03/15/2026",
                   message_id="<q-llm@faults.example>")
    iid = intake.accept(ctx.db, msg.as_bytes(), source="smtp", envelope_from="casey@example.org",
                        envelope_to=["ask@mailbot.localhost"])
    dispatch([Poke("process_inbound", iid)])
    wait(lambda: _state(db) == "awaiting_review", "the first draft", timeout=40)

    # Then: the retries were made, and an offline draft says why it is offline.
    assert len(llm.requests) == 3
    [draft] = _drafts(db)
    # the reason is in the metadata (failure reason, quarantine), not in the text that may be sent
    assert draft.source == "offline" and not draft.body.startswith("[") and "LLM unavailable" not in draft.body
    with db.read() as session:
        c = session.exec(select(Consultation)).one()
        [item] = session.exec(select(QuarantineItem)).all()
    assert item.stage == "llm" and item.ref_id == c.id and "timed out" in c.failure_reason

    reviewer = add_reviewer(db, "cora@coders.example", "Cora Reyes")
    with TestClient(create_app(ctx), base_url="http://testserver", follow_redirects=False) as client:
        sign_in(client, reviewer)
        page = client.get(f"/consultations/{c.id}")
        assert page.status_code == 200
        assert "Draft from the offline drafter" in page.text
        assert 'id="failure-reason">LLM endpoint unavailable after 2 retries' in page.text
        assert client.post(f"/consultations/{c.id}/claim",
                           data={"csrf_token": csrf_from(page.text)}).status_code == 303
        page = client.get(f"/consultations/{c.id}")
        assert "Regenerate draft" in page.text and 'name="offline"' in page.text

        # When: the reviewer regenerates while the model answers garbage ...
        llm.script(FakeLlm.garbage("Sure! Bill them both, no modifier needed."))
        assert client.post(f"/consultations/{c.id}/regenerate",
                           data={"csrf_token": csrf_from(page.text)}).status_code == 303
        wait(lambda: len(_drafts(db)) == 2 and _state(db) == "awaiting_review", "the second draft")
        page = client.get(f"/consultations/{c.id}")
        assert _drafts(db)[-1].source == "offline" and "not JSON" in page.text

        # ... and again once it is healthy.
        llm.script(FakeLlm.json(GOOD))
        client.post(f"/consultations/{c.id}/regenerate", data={"csrf_token": csrf_from(page.text)})
        wait(lambda: len(_drafts(db)) == 3 and _state(db) == "awaiting_review", "the model's draft")
        page = client.get(f"/consultations/{c.id}")
        assert "Draft from the llm drafter" in page.text and GOOD["answer"] in page.text
        assert 'id="failure-reason"' not in page.text   # the old trouble is not shown as current
        assert kinds(sink) == ["ack"]              # nothing but the acknowledgement so far

        # The reviewer approves the model's draft in the browser form.
        with db.read() as session:
            version = session.get(Consultation, c.id).version
        done = client.post(f"/consultations/{c.id}/approve",
                           data={"csrf_token": csrf_from(page.text), "body": GOOD["answer"], "version": version})
        assert done.status_code == 303, done.text[-2000:]
    wait(lambda: "answer" in kinds(sink), "the answer")
    reconcile_once(ctx, timedelta(0))
    wait(lambda: _state(db) == "sent", "the consultation to be sent")
    time.sleep(0.5)
    assert sorted(kinds(sink)) == ["ack", "answer"]
    assert len(llm.requests) == 5
