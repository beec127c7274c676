"""Stopping mail must always work: an UNSUBSCRIBE is carried out even when no
reply may be sent -- from a machine (a mail provider acting on our
List-Unsubscribe mailto, marked auto-submitted) or from a person over the
daily cap of automatic replies.  Regression for "unsubscribe dropped with the
reply"."""

from __future__ import annotations

import time

import pytest
from sqlmodel import select

from mailbot.models import InboundMessage
from mailbot.models.jobs import Subscription, SubscriptionStatus
from tests.commands.service import start_service
from tests.jobs.test_by_email import JOBS, ask

ROBIN = "robin@example.org"


@pytest.fixture(scope="module")
def service(session_db, tmp_path_factory):
    running, stop = start_service(session_db, tmp_path_factory.mktemp("unsub-svc"),
                                  **{"guards.daily_reply_cap": 3})
    yield running
    stop()


def _subscribe(service) -> None:
    confirm, _ = ask(service, "SUBSCRIBE remote CPC jobs, weekly", from_addr=ROBIN)
    ask(service, f"Re: {confirm['Subject']}", from_addr=ROBIN)


def _status(db) -> str:
    with db.read() as s:
        return s.exec(select(Subscription)).one().status


def _wait_handled(db, message_id: str, timeout: float = 20.0) -> InboundMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as s:
            row = s.exec(select(InboundMessage).where(InboundMessage.message_id == message_id)).first()
        if row is not None and any("result" in step for step in row.route):
            return row
        time.sleep(0.05)
    raise AssertionError(f"{message_id} was not handled in {timeout}s")


def test_an_auto_submitted_unsubscribe_is_carried_out_without_a_reply(service, db):
    _subscribe(service)
    assert _status(db) == SubscriptionStatus.ACTIVE
    sent_before = len(service.sink.messages)

    message_id = service.send("UNSUBSCRIBE", "", to=JOBS, from_addr=ROBIN,
                              headers={"Auto-Submitted": "auto-generated"})
    row = _wait_handled(db, message_id)

    assert _status(db) == SubscriptionStatus.CANCELLED
    assert [step["rule"] for step in row.route if "rule" in step][-1] == "machine_unsubscribe"
    assert row.route[-1]["result"] == "carried out, not answered"
    service.settle(0.5)
    assert len(service.sink.messages) == sent_before, "a machine must never get an automatic reply"


def test_an_unsubscribe_over_the_daily_cap_is_carried_out_without_a_reply(service, db):
    _subscribe(service)                                  # two replies: confirmation and status
    ask(service, "LIST", from_addr=ROBIN)               # the third and last reply of the day
    sent_before = len(service.sink.messages)

    notice_id = service.send("LIST", "", to=JOBS, from_addr=ROBIN)     # earns the one cap notice
    [notice] = service.replies_to(notice_id)
    assert notice.message["X-Mailbot-Kind"] == "cap-notice"
    message_id = service.send("UNSUBSCRIBE", "", to=JOBS, from_addr=ROBIN)
    row = _wait_handled(db, message_id)

    assert _status(db) == SubscriptionStatus.CANCELLED
    assert row.route[-1]["result"] == "carried out, not answered"
    service.settle(0.5)
    assert len(service.sink.messages) == sent_before + 1   # only the cap notice
