"""The database connection lost in the middle of a transaction.

Two ways to lose it: the process holding the transaction dies (SIGKILL
right after a statement, before the commit -- on SQLite and PostgreSQL),
and PostgreSQL itself drops the session (``pg_terminate_backend`` from a
second connection, between two statements).  Either way nothing of the
half-done step is in the database -- no consultation without its routed
message, no acknowledgement without its state change -- and doing the step
again (the reconciler's or the queue's retry) completes it exactly once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from mailbot.context import Context, configure
from mailbot.mail import intake
from mailbot.models import AuditEvent, Consultation, InboundMessage, OutboundMessage
from mailbot.services import Poke, consultations, inbound, recovery
from tests.conftest import make_settings
from tests.consultation.drive import drive, question
from tests.faults.conftest import kinds, service_env, wait

pytestmark = pytest.mark.faults

SCRIPT = Path(__file__).with_name("die_mid_transaction.py")


@pytest.fixture
def ctx(tmp_path, codes_db, db, sink) -> Context:
    settings = make_settings(tmp_path, db, **{"relay.host": "127.0.0.1", "relay.port": sink.port})
    return configure(Context(settings, db=db))


def _accept(ctx, n: int = 1) -> int:
    msg = question("Knee", "Can 20610 and 99213 be billed together?", message_id=f"<db-lost-{n}@faults.example>")
    return intake.accept(ctx.db, msg.as_bytes(), source="smtp", envelope_from="casey@example.org",
                         envelope_to=["ask@mailbot.localhost"])


def _rows(db) -> dict[str, list]:
    with db.read() as session:
        return {
            "inbound": session.exec(select(InboundMessage.status)).all(),
            "consultations": session.exec(select(Consultation.state)).all(),
            "outbound": session.exec(select(OutboundMessage.kind)).all(),
            "audit": session.exec(select(AuditEvent.action)).all(),
        }


def _die_in(ctx, tmp_path, step: str, ident: int, prefix: str) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), step, str(ident), prefix], env=service_env(ctx.settings),
                            cwd=tmp_path, capture_output=True, timeout=120)
    assert result.returncode == -9, result.stderr.decode()[-3000:]


def _redo(ctx) -> None:
    """What the reconciler does: find the unfinished work, poke it (here: run it)."""
    with ctx.db.read() as session:
        pokes = recovery.unfinished(session, timedelta(0))
    drive(ctx, pokes)


def test_a_process_killed_inside_its_transaction_leaves_nothing_half_written(ctx, tmp_path, db, sink):
    iid = _accept(ctx)

    # Killed right after inserting the consultation, before the commit.
    _die_in(ctx, tmp_path, "process_inbound", iid, "INSERT INTO consultation")
    assert _rows(db) == {"inbound": ["received"], "consultations": [], "outbound": [], "audit": []}

    # Done again: routed once; then the acknowledgement step is killed after
    # queueing the ack, before the commit.
    [poke] = inbound.process(ctx, iid)
    cid = poke.id
    assert poke.actor == "advance_consultation" and _rows(db)["consultations"] == ["received"]
    _die_in(ctx, tmp_path, "advance", cid, "INSERT INTO outbound_message")
    assert _rows(db) == {"inbound": ["processed"], "consultations": ["received"], "outbound": [], "audit": []}

    _redo(ctx)
    _redo(ctx)   # a second pass finds nothing left to do twice
    rows = _rows(db)
    assert rows["consultations"] == ["awaiting_review"] and rows["outbound"] == ["ack"]
    assert rows["audit"].count("acknowledged") == 1 and rows["audit"].count("drafted") == 1
    assert kinds(sink) == ["ack"]


def _backend_pid(conn) -> int:
    return conn.connection.dbapi_connection.info.backend_pid


def _terminate_before(db, prefix: str) -> tuple[list[int], Callable[[], None]]:
    """Once: when a statement starting with ``prefix`` is about to run,
    have PostgreSQL terminate that session's backend from another connection."""
    admin = create_engine(db.url, isolation_level="AUTOCOMMIT")
    killed: list[int] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def terminate(conn, cursor, statement, parameters, context, executemany) -> None:
        if killed or not statement.lstrip().upper().startswith(prefix):
            return
        pid = _backend_pid(conn)
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            # Wait until the backend is gone, so the next statement meets a dead session.
            for _ in range(200):
                if not other.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).first():
                    break
        killed.append(pid)

    def remove() -> None:
        event.remove(db.engine, "before_cursor_execute", terminate)
        admin.dispose()

    return killed, remove


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_postgresql_terminating_the_session_mid_transaction_is_retried_to_one_result(ctx, db, sink):
    import workflows.broker

    iid = _accept(ctx)

    # Opening the consultation: the session dies between locking the message and the INSERT.
    killed, remove = _terminate_before(db, "INSERT INTO CONSULTATION")
    try:
        with pytest.raises(OperationalError):
            inbound.process(ctx, iid)          # transient: the actor retries it
    finally:
        remove()
    assert killed and _rows(db) == {"inbound": ["received"], "consultations": [], "outbound": [], "audit": []}
    pokes = inbound.process(ctx, iid)
    cid = pokes[0].id

    # Acknowledging: the session dies before the ack is queued.
    killed, remove = _terminate_before(db, "INSERT INTO OUTBOUND_MESSAGE")
    try:
        with pytest.raises(OperationalError):
            consultations.advance(ctx, cid)
    finally:
        remove()
    assert killed and _rows(db)["consultations"] == ["received"] and _rows(db)["outbound"] == []

    # The queue's retry (a real dramatiq worker; the actor's own backoff) finishes it once.
    workflows.broker.install(ctx.settings)
    import workflows.actors as actors

    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        killed, remove = _terminate_before(db, "UPDATE CONSULTATION")   # and once more, inside the actor
        try:
            actors.dispatch([Poke("advance_consultation", cid)])
            wait(lambda: _rows(db)["consultations"] == ["awaiting_review"], "the retried step", timeout=60)
        finally:
            remove()
        wait(lambda: kinds(sink) == ["ack"], "the acknowledgement")
    finally:
        worker.stop()
    assert killed
    rows = _rows(db)
    assert rows["outbound"] == ["ack"] and rows["audit"].count("acknowledged") == 1
    assert kinds(sink) == ["ack"]
