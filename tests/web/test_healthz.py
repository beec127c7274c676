"""``/healthz`` reports the parts of its process as they really are (issue 17, point 1)."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from mailbot.mail.smtp_listener import SmtpListener
from mailbot_cli.processes import _worker_problem


def test_healthz_is_ok_with_a_running_intake_writer(client, web_ctx):
    listener = SmtpListener(web_ctx)
    listener.start()
    try:
        response = client.get("/healthz")
    finally:
        listener.stop()
    assert response.status_code == 200
    assert response.json()["parts"] == {"database": "ok", "intake_writer": "ok"}


def test_healthz_says_503_when_the_intake_writer_thread_is_gone(client, web_ctx):
    listener = SmtpListener(web_ctx)
    listener.start()
    try:
        listener.writer.close()                  # the thread ended, whatever the cause
        response = client.get("/healthz")
    finally:
        listener.stop()
    assert response.status_code == 503
    assert response.json()["parts"]["intake_writer"] == "intake writer thread is not running"
    assert "intake_writer" in response.json()["status"]


def test_healthz_says_503_when_the_database_does_not_answer(client, web_ctx, tmp_path):
    from mailbot.db import Database

    web_ctx.__dict__["db"] = Database(f"sqlite:///{tmp_path}")  # a directory: cannot be opened
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["parts"]["database"] == "database unavailable"


def test_a_worker_whose_threads_stopped_is_reported():
    broker = StubBroker()
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    assert _worker_problem(worker) is None
    worker.stop()
    assert _worker_problem(worker) is not None
