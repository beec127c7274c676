"""Intake's batch insert (issue 16): the rows it writes without SQLAlchemy's
per-row machinery are the rows the ORM would write, each id is its own
message's, a batch is all or nothing, and a group commit answers only what
is committed -- on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest
from sqlalchemy import text
from sqlmodel import select

from mailbot.mail.group_commit import GroupCommit
from mailbot.mail.intake import Arrival, _BatchInsert, accept_many, header_message_id
from mailbot.models import InboundMessage

EMPTY_AFTER_INTAKE = {"in_reply_to": "", "references": [], "from_addr": "", "from_name": "", "reply_to": "",
                      "subject": "", "text": "", "full_text": "", "html": "", "codes": [], "action": "", "route": [],
                      "auto_reply_ok": True, "consultation_id": None, "error": "", "attempts": 0,
                      "processed_at": None, "status": "received"}


def arrival(n: int, **changes) -> Arrival:
    raw = (f"From: Coder <c{n}@clinic.example>\r\nMessage-ID: <m{n}@clinic.example>\r\nSubject: q {n}\r\n\r\n"
           f"Is 99213 right? \u00e9 {n}\r\n").encode()
    fields = {"raw": raw, "source": "smtp", "envelope_from": f"c{n}@clinic.example",
              "envelope_to": ["ask@mailbot.localhost", f"lookup+{n}@mailbot.localhost"], "peer": "192.0.2.7"}
    return Arrival(**{**fields, **changes})


def columns(row: InboundMessage) -> dict:
    return {c.name: getattr(row, c.name) for c in InboundMessage.__table__.columns if c.name not in ("id", "received_at")}


def test_a_stored_row_is_the_row_the_orm_would_store(db):
    given = arrival(1, raw=b"Message-ID: <x@y>\r\nSubject: \xff bytes\r\n\r\nhi\x00\r\n", envelope_from="<>")
    [fast_id] = accept_many(db, [given])
    import hashlib

    with db.session() as session:
        orm = InboundMessage(source="smtp", envelope_from="<>", envelope_to=given.envelope_to, peer=given.peer,
                             raw=given.raw, raw_sha256=hashlib.sha256(given.raw).hexdigest(), size=len(given.raw),
                             message_id=header_message_id(given.raw))
        session.add(orm)
        session.flush()
        orm_id = orm.id
    with db.read() as session:
        fast, slow = session.get(InboundMessage, fast_id), session.get(InboundMessage, orm_id)
        assert columns(fast) == columns(slow)
        assert fast.received_at.tzinfo is not None and abs((fast.received_at - slow.received_at).total_seconds()) < 60
        assert {k: getattr(fast, k) for k in EMPTY_AFTER_INTAKE} == EMPTY_AFTER_INTAKE


def test_each_id_is_its_own_messages_in_a_large_batch(db):
    given = [arrival(n) for n in range(150)]                 # over psycopg's cached-statement bounds
    ids = accept_many(db, given)
    assert ids == sorted(ids) and len(set(ids)) == 150
    with db.read() as session:
        for inbound_id, sent in zip(ids, given):
            row = session.get(InboundMessage, inbound_id)
            assert (row.raw, row.envelope_from, row.message_id) == (sent.raw, sent.envelope_from,
                                                                    header_message_id(sent.raw))


def test_ids_stay_right_while_another_session_inserts(db):
    """PostgreSQL hands out ids to concurrent inserts interleaved; each
    batch still gets its own rows' ids, in order."""
    results: list[list[int]] = []
    batches = [[arrival(1000 * t + n) for n in range(20)] for t in range(4)]

    def store(batch):
        for _ in range(5):
            results.append((batch, accept_many(db, batch)))

    threads = [threading.Thread(target=store, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 20
    with db.read() as session:
        for batch, ids in results:
            assert [session.get(InboundMessage, i).raw for i in ids] == [a.raw for a in batch]


_triggers = itertools.count()


@pytest.fixture
def refusing_peer(db):
    """A trigger that refuses rows whose peer is 'refused': a batch that
    fails inside the database, after some of its rows went in.  (A new name
    each time: SQLite connections keep prepared statements, and one kept
    from an earlier CREATE of the same name can fail as "already exists".)"""
    name = f"refuse_peer_{next(_triggers)}"
    if db.is_sqlite:
        create = [f"CREATE TRIGGER {name} BEFORE INSERT ON inbound_message WHEN NEW.peer = 'refused' "
                  "BEGIN SELECT RAISE(ABORT, 'refused peer'); END"]
        drop = [f"DROP TRIGGER {name}"]
    else:
        create = [f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN IF NEW.peer = 'refused' THEN "
                  "RAISE EXCEPTION 'refused peer'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                  f"CREATE TRIGGER {name} BEFORE INSERT ON inbound_message FOR EACH ROW EXECUTE FUNCTION {name}()"]
        drop = [f"DROP TRIGGER {name} ON inbound_message", f"DROP FUNCTION {name}()"]
    with db.engine.begin() as conn:
        for statement in create:
            conn.execute(text(statement))
    yield
    with db.engine.begin() as conn:
        for statement in drop:
            conn.execute(text(statement))


def count(db) -> int:
    with db.read() as session:
        return len(session.exec(select(InboundMessage.id)).all())


def test_a_batch_that_fails_in_the_database_stores_nothing(db, refusing_peer):
    with pytest.raises(Exception, match="refused peer"):
        accept_many(db, [arrival(1), arrival(2), arrival(3, peer="refused"), arrival(4)])
    assert count(db) == 0
    assert len(accept_many(db, [arrival(5)])) == 1           # the connection is usable again


def test_group_commit_answers_each_sender_after_the_commit_and_fails_only_the_bad_one(db, refusing_peer):
    """Through the writer thread: the batch fails as a whole, is stored one
    by one, and only the refused message's sender gets the error; every id
    handed out is a committed row another connection can read."""
    pokes: list[int] = []
    writer = GroupCommit(db, on_stored=pokes.append)
    try:
        given = [arrival(n, peer="refused" if n == 3 else "192.0.2.7") for n in range(8)]

        async def send_all():
            return await asyncio.gather(*(writer.store(a) for a in given), return_exceptions=True)

        outcomes = asyncio.run(send_all())
    finally:
        writer.close()
    assert isinstance(outcomes[3], Exception) and "refused peer" in str(outcomes[3])
    ids = [o for i, o in enumerate(outcomes) if i != 3]
    assert all(isinstance(i, int) for i in ids)
    with db.engine.connect() as other:
        committed = {row_id for (row_id,) in other.execute(text("SELECT id FROM inbound_message"))}
    assert committed == set(ids) and sorted(pokes) == sorted(ids)


def test_group_commit_from_two_event_loops_and_a_thread(db):
    """Waiters on different loops (and plain futures) each get their own id."""
    writer = GroupCommit(db)
    try:
        given = [arrival(n) for n in range(30)]
        got: dict[int, int] = {}

        def loop_sender(part):
            async def send():
                return await asyncio.gather(*(writer.store(given[n]) for n in part))

            got.update(zip(part, asyncio.run(send())))

        threads = [threading.Thread(target=loop_sender, args=(range(k, 30, 3),)) for k in (0, 1)]
        for thread in threads:
            thread.start()
        futures = {n: writer.submit(given[n]) for n in range(2, 30, 3)}
        for thread in threads:
            thread.join(60)
        got.update({n: f.result(60) for n, f in futures.items()})
    finally:
        writer.close()
    assert len(got) == 30
    with db.read() as session:
        assert all(session.get(InboundMessage, got[n]).raw == given[n].raw for n in range(30))


def test_a_sender_that_gave_up_is_counted_and_the_writer_goes_on(db):
    """A cancelled waiter (aiosmtpd cancels the handler when the client
    disconnects) is skipped when its batch commits; the row is stored."""
    writer = GroupCommit(db)
    try:
        async def give_up_then_send():
            task = asyncio.ensure_future(writer.store(arrival(1)))
            await asyncio.sleep(0)
            task.cancel()
            return await writer.store(arrival(2))

        second = asyncio.run(give_up_then_send())
        assert writer.submit(arrival(3)).result(60) > second
        assert writer.abandoned == 1 and writer.problem() is None
    finally:
        writer.close()
    assert count(db) == 3


def test_one_statement_text_for_every_batch_size(db):
    """PostgreSQL: the batch is bound as arrays, so the text and its few
    parameters stay the same from 1 to 64 rows -- within what psycopg
    caches (and then prepares); SQLite: one row's placeholders, executemany."""
    from psycopg._queries import MAX_CACHED_STATEMENT_PARAMS

    with db.engine.connect() as conn:
        plan = _BatchInsert.for_dialect(conn.dialect)
    columns = len(InboundMessage.__table__.columns) - 1
    if db.is_sqlite:
        assert plan._statement.count("?") == columns
    else:
        assert plan._statement.count("%s") + plan._statement.count("%b") == columns <= MAX_CACHED_STATEMENT_PARAMS
