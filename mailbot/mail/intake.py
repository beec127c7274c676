"""The one way a message enters the system: store it durably, return its id.

Both the SMTP listener and the IMAP poller call :func:`accept`; only after it
returns does the listener answer 250 (or the poller move the message).  The
row holds the raw bytes and the envelope, so nothing else is needed to
process -- or replay -- the message later.  Intake does no routing:
deduplication and every other decision belong to ``mail.routing``, which runs
in a worker, not while a sending server waits.

The Message-ID is read from the header block (cheap, never fails) so the
poller and the duplicate rule can find earlier copies by index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass

from sqlalchemy import JSON, Connection
from sqlalchemy.engine import Dialect

from mailbot.db import Database
from mailbot.models import InboundMessage, InboundStatus, utcnow

log = logging.getLogger(__name__)

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:\s*(<[^<>\s]{1,990}>)", re.I | re.M)


@dataclass
class Arrival:
    """One message as it arrived, before it is stored."""

    raw: bytes
    source: str
    envelope_from: str
    envelope_to: list[str]
    peer: str = ""

    def varying(self) -> tuple:
        """The values of the row's columns that differ from one message to
        the next, in :data:`_VARYING`'s order after ``received_at`` (the
        batch's; the rest start empty)."""
        return (self.source[:16], (self.envelope_from or "")[:512],
                [t[:512] for t in self.envelope_to][:100], (self.peer or "")[:255],
                self.raw, hashlib.sha256(self.raw).hexdigest(), len(self.raw),
                header_message_id(self.raw))


_VARYING = ("received_at", "source", "envelope_from", "envelope_to", "peer", "raw", "raw_sha256", "size",
            "message_id")

# Everything routing fills in later starts empty (these columns have no
# server-side defaults); with the status, the columns whose value is the
# same for every new row.
_EMPTY_PARSED = {
    "in_reply_to": "", "references": [], "from_addr": "", "from_name": "", "reply_to": "", "subject": "",
    "text": "", "full_text": "", "html": "", "codes": [], "action": "", "route": [], "auto_reply_ok": True,
    "consultation_id": None, "error": "", "attempts": 0, "processed_at": None,
}


def accept(db: Database, raw: bytes, *, source: str, envelope_from: str, envelope_to: list[str],
           peer: str = "") -> int:
    """Store ``raw`` with its envelope in its own committed transaction.

    Returns the new ``InboundMessage`` id.  Raises whatever the database
    raises (the caller answers "try again later"); nothing is half-stored
    because the row is written in one transaction."""
    return accept_many(db, [Arrival(raw, source, envelope_from, envelope_to, peer)])[0]


def accept_many(db: Database, arrivals: list[Arrival], conn: Connection | None = None) -> list[int]:
    """Store several messages in ONE transaction (all or none); their ids,
    in order.  One commit -- one fsync -- for the lot is what lets the
    listener keep up with many concurrent senders (see
    :class:`mailbot.mail.group_commit.GroupCommit`).
    ``conn``: a connection of the caller's to use (no transaction open on it)."""
    if conn is None:
        with db.engine.connect() as own:
            return accept_many(db, arrivals, own)
    plan = _BatchInsert.for_dialect(conn.dialect)
    if plan.sqlite:
        return plan.insert_sqlite(conn, arrivals)
    # A Core transaction (a no-op on the group commit's autocommit
    # connection, where the one statement is its own transaction).
    with conn.begin():
        return plan.insert(conn, arrivals)


class _BatchInsert:
    """The INSERT that stores a batch of arrivals on one dialect, built once.

    The listener's writer runs it for every group commit, so it skips what
    SQLAlchemy redoes per statement and per row: compiling the insert, and
    running each column's bind processor on values that never change
    (everything routing fills in later starts empty).  Those are processed
    once, here, by the column types' own processors, so a row stored this
    way is the row the ORM would store (``tests/mail/test_intake_rows.py``);
    per row only the envelope, the raw bytes and what is derived from them
    are converted.

    - SQLite: one ``executemany`` under the write lock (BEGIN IMMEDIATE); the
      ids are those above the largest id read before the insert.  SQLite
      gives each new row an id above every existing one, so ascending ids
      are the insertion order.
    - PostgreSQL: ONE statement whose text never changes with the batch
      size: each varying column is bound as one array, ``unnest`` turns the
      arrays back into rows, numbered ``WITH ORDINALITY``, and ``ORDER BY``
      that number makes the sequence hand out ids in the batch's order (as
      SQLAlchemy's own ordered "insertmanyvalues" relies on), so sorted ids
      are the rows in order.  A fixed text with a few parameters is cached
      by psycopg and, after a few batches, a prepared statement on the
      writer's kept connection: no per-row placeholders to rewrite, no
      parse and plan per batch.  (SQLAlchemy's own form renders a new
      statement per batch size with ~27 placeholders a row, which psycopg
      rewrites on every call.)
    """

    _cache: dict[tuple[str, str], _BatchInsert] = {}

    def __init__(self, dialect: Dialect) -> None:
        table = InboundMessage.__table__
        self.table = table.name
        self.sqlite = dialect.name == "sqlite"
        quote = dialect.identifier_preparer.quote
        constant = {"status": InboundStatus.RECEIVED.value, **_EMPTY_PARSED}
        columns = [c for c in table.columns if c.name != "id"]
        varying = [c for c in columns if c.name not in constant]
        fixed = [c for c in columns if c.name in constant]
        if tuple(c.name for c in varying) != _VARYING:
            raise RuntimeError(f"intake: {table.name}'s columns changed; update intake._VARYING")

        def processor(column):
            # JSON goes as its text on both databases (PostgreSQL casts it).
            if isinstance(column.type, JSON):
                return json.dumps
            return column.type.dialect_impl(dialect).bind_processor(dialect) or _same

        self._processors = tuple(processor(c) for c in varying)
        self._received_at = self._processors[0]
        self._constants = tuple(processor(c)(constant[c.name]) for c in fixed)
        names = ", ".join(quote(c.name) for c in varying + fixed)
        if self.sqlite:
            marks = ", ".join("?" * len(varying + fixed))
            self._statement = f"INSERT INTO {self.table} ({names}) VALUES ({marks})"
            return
        if dialect.driver != "psycopg":   # %b (binary) parameters are psycopg's
            raise RuntimeError(f"intake on {dialect.name} needs the psycopg driver (postgresql+psycopg://), "
                               f"not {dialect.driver}")

        def sql_type(column):
            return column.type.compile(dialect=dialect)

        arrays = ", ".join(f"%b::{'TEXT' if isinstance(c.type, JSON) else sql_type(c)}[]" for c in varying)
        picked = [f"b.p{i}::JSON" if isinstance(c.type, JSON) else f"b.p{i}" for i, c in enumerate(varying)]
        picked += [f"%s::{sql_type(c)}" for c in fixed]
        self._statement = (
            f"INSERT INTO {self.table} ({names}) SELECT {', '.join(picked)} "
            f"FROM unnest({arrays}) WITH ORDINALITY AS b({', '.join(f'p{i}' for i in range(len(varying)))}, n) "
            f"ORDER BY b.n RETURNING id")

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> _BatchInsert:
        key = (dialect.name, dialect.driver)
        plan = cls._cache.get(key)
        if plan is None:
            plan = cls._cache[key] = cls(dialect)
        return plan

    def rows(self, arrivals: list[Arrival]) -> list[tuple]:
        """The varying columns of each arrival's row, in the driver's form.
        One ``received_at`` for the batch: the rows are received together,
        when their commit acknowledges them."""
        received_at = self._received_at(utcnow())
        convert = self._processors[1:]
        return [(received_at, *(c(v) for c, v in zip(convert, arrival.varying()))) for arrival in arrivals]

    def insert(self, conn: Connection, arrivals: list[Arrival]) -> list[int]:
        """PostgreSQL: insert the batch in one statement; ids in order."""
        rows = self.rows(arrivals)
        columns = tuple(list(column) for column in zip(*rows))
        ids = sorted(conn.exec_driver_sql(self._statement, self._constants + columns).scalars())
        if len(ids) != len(rows):
            raise RuntimeError(f"intake: {len(rows)} rows inserted, {len(ids)} ids returned")
        return ids

    def insert_sqlite(self, conn: Connection, arrivals: list[Arrival]) -> list[int]:
        """The batch in one transaction of its own on the driver's
        connection: ``BEGIN IMMEDIATE`` (the write lock, as the engine's
        writes take it), one ``executemany`` (SQLAlchemy's own ordered
        ``INSERT ... RETURNING`` runs one row at a time on SQLite), the ids
        read back under that lock, ``COMMIT`` (the fsync: ``synchronous=FULL``).
        Five statements whose text never changes need none of SQLAlchemy's
        per-statement work; ``conn`` must have no transaction open."""
        table, constants, rows = self.table, self._constants, self.rows(arrivals)
        driver = conn.connection.driver_connection
        cursor = driver.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                (before,) = cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
                cursor.executemany(self._statement, [row + constants for row in rows])
                ids = [i for (i,) in cursor.execute(f"SELECT id FROM {table} WHERE id > ? ORDER BY id", (before,))]
                if len(ids) != len(rows):   # cannot happen under the write lock; never hand out a wrong id
                    raise RuntimeError(f"intake: {len(rows)} rows inserted, {len(ids)} found above id {before}")
                cursor.execute("COMMIT")
            except BaseException:
                if driver.in_transaction:
                    driver.rollback()
                raise
        finally:
            cursor.close()
        return ids


def _same(value):
    return value


def header_message_id(raw: bytes) -> str:
    """The Message-ID from the header block of ``raw``, or "" (no full parse)."""
    end = _HEADER_END.search(raw, 0, 256 * 1024)
    head = raw[: end.start() if end else 256 * 1024]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode("ascii", "replace") if match else ""
