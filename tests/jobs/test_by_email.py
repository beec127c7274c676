"""The job board by email, end to end: real SMTP conversations with the
listener, the router and the command actor on the embedded worker, digests
from the scheduler, and every email taken from an aiosmtpd relay sink.

A subscriber subscribes, confirms by replying, receives a correct digest,
lists, pauses and resumes, changes what they get, and unsubscribes -- once
by command and once through the List-Unsubscribe mailto of a digest.
"""

from __future__ import annotations

import re
from pathlib import Path
from datetime import timedelta
from urllib.parse import unquote

import pytest
from sqlalchemy import update
from sqlmodel import select

from mailbot.jobs import board
from mailbot.jobs.importers import JobInput
from mailbot.models.base import utcnow
from mailbot.models.jobs import Job, JobStatus, Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from tests.commands.service import start_service
from tests.commands.support import bodies
from tests.support.children import die_with_parent

JOBS = "jobs@mailbot.localhost"
CASEY = "casey@example.org"


@pytest.fixture(scope="module")
def service(session_db, tmp_path_factory):
    running, stop = start_service(session_db, tmp_path_factory.mktemp("jobs-svc"), **{
        "guards.daily_reply_cap": 100, "jobs.employer_senders": ["@lonestar.example"]})
    yield running
    stop()


def ask(service, subject: str, text: str = "", *, from_addr: str = CASEY):
    """Send one command to jobs@ and return the one reply, parsed, with its text."""
    message_id = service.send(subject, text, to=JOBS, from_addr=from_addr)
    [reply] = service.replies_to(message_id)
    return reply.message, bodies(reply.message)[0]


def digests_for(service, address: str, count: int):
    service.sink.wait_for(1)
    found = []
    for _ in range(400):
        found = [m for m in service.sink.messages
                 if m.recipients == [address] and m.message["X-Mailbot-Kind"] == "digest"]
        if len(found) >= count:
            return found
        service.settle(0.05)
    raise AssertionError(f"{len(found)} digest(s) for {address}, expected {count}")


def tick(ctx):
    # Imported late: importing the queue layer reads the configured context.
    from workflows.scheduler import tick as scheduler_tick

    return scheduler_tick(ctx)


def make_due(db) -> None:
    """Let a day pass for every active subscription."""
    with db.session() as s:
        s.exec(update(Subscription).where(Subscription.status == SubscriptionStatus.ACTIVE)
               .values(next_due_at=utcnow() - timedelta(minutes=1)))


def test_subscribe_confirm_digest_list_pause_resume_change_and_unsubscribe(service, db):
    ctx = service.ctx
    # Subscribe: a confirmation request, nothing active yet.
    confirm, text = ask(service, "SUBSCRIBE JOBS remote CPC in Texas daily")
    assert confirm["X-Mailbot-Kind"] == "subscribe-confirm"
    token = re.match(r"CONFIRM ([0-9a-f]{16}) ", confirm["Subject"]).group(1)
    assert "remote jobs for CPC located in Texas, daily" in text and "/subscribe/confirm/" in text
    with db.read() as s:
        [sub] = s.exec(select(Subscription)).all()
        assert sub.status == SubscriptionStatus.PENDING

    # Confirm by replying to the confirmation email.
    reply, text = ask(service, f"Re: {confirm['Subject']}", "yes please\n\n> quoted confirmation")
    assert reply["Subject"].startswith("Subscription confirmed") and "is active" in text

    # Two new postings, one matching; the scheduler's next pass sends the digest.
    with db.session() as s:
        board.upsert(s, JobInput(title="Remote Outpatient Coder", employer="Lone Star Health", state="TX",
                                 work_mode="remote", credentials=["CPC"], apply_url="https://lonestar.example/101"))
        board.upsert(s, JobInput(title="Inpatient Coder", employer="Buckeye Health", city="Dayton", state="OH",
                                 apply_url="https://buckeye.example/7"))
    make_due(db)
    tick(ctx)
    [first] = digests_for(service, CASEY, 1)
    digest_text = bodies(first.message)[0]
    assert "Remote Outpatient Coder -- Lone Star Health" in digest_text and "Buckeye" not in digest_text
    # Issue 15: the count and the first group heading ran together, and the stop link was missing.
    assert re.search(r"1 matching job\.\r?\n\r?\n", digest_text) and "job.==" not in digest_text, digest_text
    assert re.search(r"Stop this search: \S+", digest_text)
    assert first.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    tick(ctx)                                       # not due again: no second digest
    service.settle(0.2)
    assert len(digests_for(service, CASEY, 1)) == 1

    # LIST, PAUSE, RESUME.
    _, text = ask(service, "LIST")
    assert f"S-{sub.id}  active  remote jobs for CPC located in Texas, daily" in text
    _, text = ask(service, "PAUSE")
    assert "Paused 1 subscription" in text and "paused" in text
    make_due(db)
    assert tick(ctx) == []                          # paused: nothing claimed
    _, text = ask(service, f"RESUME S-{sub.id}")
    assert "Resumed 1 subscription" in text

    # Change: add a code-update subscription, confirm it, cancel the job digest.
    confirm2, _ = ask(service, "SUBSCRIBE UPDATES E08-E13")
    ask(service, f"Re: {confirm2['Subject']}")
    _, text = ask(service, f"UNSUBSCRIBE S-{sub.id}")
    assert "Cancelled 1 subscription" in text and "code-set changes for E08-E13" in text
    with db.read() as s:
        assert s.get(Subscription, sub.id).status == SubscriptionStatus.CANCELLED

    # Unsubscribe from everything by command.
    _, text = ask(service, "UNSUBSCRIBE")
    assert "unsubscribed from everything" in text
    with db.read() as s:
        assert {x.status for x in s.exec(select(Subscription)).all()} == {SubscriptionStatus.CANCELLED}
        assert s.exec(select(Subscriber)).one().status == SubscriberStatus.UNSUBSCRIBED


def test_the_list_unsubscribe_mailto_of_a_digest_unsubscribes_from_job_digests(service, db):
    for request in ("SUBSCRIBE remote CPC jobs in Texas, daily", "SUBSCRIBE JOBS hybrid daily",
                    "SUBSCRIBE UPDATES E08-E13"):
        confirm, _ = ask(service, request, from_addr="robin@example.org")
        ask(service, f"Re: {confirm['Subject']}", from_addr="robin@example.org")
    with db.session() as s:
        board.upsert(s, JobInput(title="Remote Coder", employer="Lone Star Health", work_mode="remote",
                                 apply_url="https://lonestar.example/202"))
    make_due(db)
    tick(service.ctx)
    [digest] = digests_for(service, "robin@example.org", 1)
    mailto = digest.message["List-Unsubscribe"].split(",")[1].strip(" <>")
    address, _, query = mailto.removeprefix("mailto:").partition("?subject=")
    assert address == JOBS
    # Sent from another address (a forwarder): the signed token decides.
    _, text = ask(service, unquote(query), from_addr="robin.alias@example.org")
    assert "You are unsubscribed from all job digests. Your other subscriptions continue." in text
    with db.read() as s:
        statuses = {sub.kind: sub.status for sub in s.exec(select(Subscription))}
        assert [sub.status for sub in s.exec(select(Subscription).where(Subscription.kind == "jobs"))] == \
            [SubscriptionStatus.CANCELLED] * 2
        assert statuses["updates"] == SubscriptionStatus.ACTIVE
        assert s.exec(select(Subscriber)).one().status == SubscriberStatus.ACTIVE


def test_a_plain_line_to_jobs_is_a_subscription_request(service, db):
    confirm, text = ask(service, "remote CPC jobs in Texas, daily", from_addr="sam@example.org")
    assert confirm["X-Mailbot-Kind"] == "subscribe-confirm"
    assert "remote jobs for CPC located in Texas, daily" in text
    reply, text = ask(service, "thanks!", from_addr="sam@example.org")
    assert reply["X-Mailbot-Kind"] == "command-error" and "could not tell what you want" in text


def test_a_confirmation_code_from_another_address_is_refused(service, db):
    confirm, _ = ask(service, "SUBSCRIBE JOBS remote", from_addr="lee@example.org")
    reply, text = ask(service, f"Re: {confirm['Subject']}", from_addr="mallory@example.org")
    assert reply["X-Mailbot-Kind"] == "command-error"
    with db.read() as s:
        assert s.exec(select(Subscription)).one().status == SubscriptionStatus.PENDING


def test_post_job_from_an_allowed_employer_is_pending_and_others_are_refused(service, db):
    fields = ("Title: Remote Outpatient Coder\nEmployer: Lone Star Health\nLocation: Austin, TX\n"
              "Work mode: remote\nCredentials: CPC, CCS\nSalary: $55,000 - $65,000\n"
              "Apply: https://lonestar.example/jobs/9\nExpires: 2030-01-31\n")
    reply, text = ask(service, "POST JOB", fields, from_addr="hr@lonestar.example")
    assert reply["Subject"].startswith("Job posting received: Remote Outpatient Coder (J-")
    with db.read() as s:
        job = s.exec(select(Job)).one()
        assert (job.status, job.submitted_by, job.state, job.credentials) == (
            JobStatus.PENDING, "hr@lonestar.example", "TX", ["CPC", "CCS"])
    reply, text = ask(service, "POST JOB", fields, from_addr="someone@elsewhere.example")
    assert reply["Subject"] == "Job posting not accepted" and "not on the list" in text
    reply, text = ask(service, "POST JOB", "Title: Coder\n", from_addr="hr@lonestar.example")
    assert "could not read the posting" in text
    # Another allowed address cannot overwrite that posting.
    reply, text = ask(service, "POST JOB", fields.replace("Lone Star Health", "Other Clinic"),
                      from_addr="recruiter@lonestar.example")
    assert f"already on the board as J-{job.id}" in text


def test_a_worker_killed_mid_digest_leaves_the_run_for_the_reconciler_and_one_email_goes_out(service, db, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from workflows.reconciler import reconcile_once

    from mailbot.jobs import schedule
    from mailbot.models.jobs import DigestRun, DigestState
    from mailbot.models.mail import OutboundMessage

    ctx = service.ctx
    confirm, _ = ask(service, "SUBSCRIBE JOBS remote daily", from_addr="kim@example.org")
    ask(service, f"Re: {confirm['Subject']}", from_addr="kim@example.org")
    with db.session() as s:
        board.upsert(s, JobInput(title="Remote Coder", employer="Lone Star Health", work_mode="remote",
                                 apply_url="https://lonestar.example/303"))
    make_due(db)
    with db.session() as s:           # claim as the scheduler would, without poking a worker
        [run_id] = schedule.claim_due(s, ctx.settings)
    marker = tmp_path / "queued"
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.crash_worker", db.url, str(ctx.settings.service.var_dir), str(run_id),
         str(marker)], cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent())
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert worker.poll() is None, worker.stdout.read().decode()
            assert time.monotonic() < deadline, "the worker never reached the queueing step"
            time.sleep(0.05)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    with db.read() as s:
        assert s.get(DigestRun, run_id).state == DigestState.PENDING      # nothing committed
        assert s.exec(select(OutboundMessage).where(OutboundMessage.kind == "digest")).all() == []

    assert reconcile_once(ctx, timedelta(0)) >= 1                          # re-pokes send_digest
    [digest] = digests_for(service, "kim@example.org", 1)
    reconcile_once(ctx, timedelta(0))
    tick(ctx)
    service.settle(0.3)
    assert len([m for m in service.sink.messages if m.recipients == ["kim@example.org"]
                and m.message["X-Mailbot-Kind"] == "digest"]) == 1
    with db.read() as s:
        assert s.get(DigestRun, run_id).state == DigestState.SENT
        assert len(s.exec(select(OutboundMessage).where(OutboundMessage.kind == "digest")).all()) == 1


def dsn(recipient: str, n: int) -> bytes:
    """A delivery status notification about a digest we sent to ``recipient``."""
    return (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        "To: bounces@mailbot.localhost\r\n"
        f"Subject: Undelivered Mail Returned to Sender ({n})\r\n"
        f"Message-ID: <dsn-{n}-{recipient}@mx.example.org>\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: User unknown\r\n"
        "--b--\r\n").encode()


def test_bounces_through_the_listener_suspend_the_subscriber(service, db):
    import smtplib
    import time

    confirm, _ = ask(service, "SUBSCRIBE JOBS remote daily", from_addr="gone@example.org")
    ask(service, f"Re: {confirm['Subject']}", from_addr="gone@example.org")
    ask(service, "HELP", from_addr="gone@example.org")
    threshold = service.ctx.settings.jobs.bounce_threshold
    # Each DSN comes back to the VERP return path of one message we sent them.
    sent = [m for m in service.sink.messages if m.recipients == ["gone@example.org"]][-threshold:]
    assert len(sent) == threshold and len({m.envelope_from for m in sent}) == threshold
    for n, mail in enumerate(sent):
        with smtplib.SMTP("127.0.0.1", service.smtp_port, timeout=30) as smtp:
            smtp.sendmail("<>", [mail.envelope_from], dsn("gone@example.org", n))
    deadline = time.monotonic() + 20
    while True:
        with db.read() as s:
            subscriber = s.exec(select(Subscriber).where(Subscriber.email == "gone@example.org")).one()
        if subscriber.status == SubscriberStatus.SUSPENDED or time.monotonic() > deadline:
            break
        service.settle(0.1)
    assert (subscriber.status, subscriber.bounce_count) == (SubscriberStatus.SUSPENDED, threshold)
    make_due(db)
    assert tick(service.ctx) == []


def test_the_scheduler_thread_sends_due_digests_and_stops(service, db):
    from workflows.scheduler import Scheduler

    confirm, _ = ask(service, "SUBSCRIBE JOBS remote daily", from_addr="pat@example.org")
    ask(service, f"Re: {confirm['Subject']}", from_addr="pat@example.org")
    with db.session() as s:
        board.upsert(s, JobInput(title="Remote Coder", employer="Lone Star Health", work_mode="remote",
                                 apply_url="https://lonestar.example/404"))
    make_due(db)
    scheduler = Scheduler(service.ctx, interval=0.2)
    scheduler.start()
    try:
        [digest] = digests_for(service, "pat@example.org", 1)
    finally:
        scheduler.stop()
    assert not scheduler.is_alive()
    assert "Remote Coder -- Lone Star Health" in bodies(digest.message)[0]


def test_subscribe_in_the_subject_with_the_details_in_the_body(service, db):
    """Issue 15: ``Subject: SUBSCRIBE`` with "remote CPC jobs in Texas, daily" in the body failed."""
    confirm, text = ask(service, "SUBSCRIBE", "remote CPC jobs in Texas, daily\n\n-- \nCasey", from_addr="dana@example.org")
    assert confirm["X-Mailbot-Kind"] == "subscribe-confirm"
    assert "remote jobs for CPC located in Texas, daily" in text
