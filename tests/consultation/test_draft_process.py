"""Drafting in a child process (``serve``'s ``broker.draft_processes``):
the same draft as in the calling thread, stored by the same state machine,
and a drafter that dies fails only its own draft, which is retried."""

from __future__ import annotations

import os
import signal

import pytest
from sqlmodel import select

from mailbot.context import Context, configure
from mailbot.models import Consultation, Draft
from mailbot.services.consultation_drafting import make_draft
from mailbot.services.consultation_state import TryLater
from tests.consultation.conftest import consult_settings
from tests.consultation.drive import question, receive
from workflows.draft_process import DraftProcesses


@pytest.fixture
def offline_ctx(tmp_path, codes_db, db, sink) -> Context:
    return configure(Context(consult_settings(tmp_path, db, sink, None), db=db))


@pytest.fixture
def drafter(offline_ctx):
    pool = DraftProcesses(offline_ctx.settings, 1)
    yield pool
    pool.shutdown()


def _children(pool: DraftProcesses) -> list[int]:
    return [p.pid for p in pool._pool._processes.values()]


def test_a_child_process_drafts_what_the_thread_drafts_and_a_dead_one_fails_only_its_draft(offline_ctx, drafter, db):
    offline_ctx.drafter = drafter
    receive(offline_ctx, question("E11.22 with CKD", "Patient has type 2 diabetes with diabetic CKD stage 3a. "
                                  "Which codes? DOS 2026-03-02"))
    with db.read() as session:
        c = session.exec(select(Consultation)).one()
        assert c.state == "awaiting_review"
        stored = session.exec(select(Draft).where(Draft.consultation_id == c.id)).one()
    children = _children(drafter)
    assert children and os.getpid() not in children          # it really ran elsewhere
    here = make_draft(offline_ctx, c.id)                      # ... and drafts what this thread drafts
    assert stored.body == here.body
    assert "N18.31" in stored.body

    # The drafter dies (out of memory, an operator's kill): only the draft
    # it was given fails, as "try later"; a new child takes the retry.
    pid = drafter._pool.submit(os.getpid).result(timeout=120)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(TryLater, match="drafting process died"):
        drafter(offline_ctx, c.id)
    result = drafter(offline_ctx, c.id)
    assert result.source == "offline" and result.body == here.body
    assert pid not in _children(drafter)
    assert drafter.problem() is None
