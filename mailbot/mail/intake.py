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
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

from sqlalchemy import Connection, insert
from sqlalchemy.exc import DBAPIError

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

    def values(self) -> dict:
        """Column values for the new row.  A plain dict, not a model
        instance: building SQLModel instances costs more CPU than the insert."""
        return {
            "received_at": utcnow(), "source": self.source[:16],
            "envelope_from": (self.envelope_from or "")[:512],
            "envelope_to": [t[:512] for t in self.envelope_to][:100], "peer": (self.peer or "")[:255],
            "raw": self.raw, "raw_sha256": hashlib.sha256(self.raw).hexdigest(), "size": len(self.raw),
            "message_id": header_message_id(self.raw), "status": InboundStatus.RECEIVED.value,
            **_EMPTY_PARSED,
        }


# Everything routing fills in later starts empty (these columns have no
# server-side defaults).
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
    listener keep up with many concurrent senders (see :class:`GroupCommit`).
    ``conn``: a connection of the caller's to use (no transaction open on it)."""
    if conn is None:
        with db.engine.connect() as own:
            return accept_many(db, arrivals, own)
    table = InboundMessage.__table__
    rows = [arrival.values() for arrival in arrivals]
    # A Core transaction (the engine's BEGIN IMMEDIATE on SQLite) and one
    # insert for the batch, ids back in order: the ORM adds nothing here
    # but CPU on the listener's hot path.
    with conn.begin():
        if conn.dialect.name == "sqlite":
            return _insert_sqlite(conn, table, rows)
        result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        ids = [row_id for (row_id,) in result]
    return ids


def _insert_sqlite(conn: Connection, table, rows: list[dict]) -> list[int]:
    """The batch with one ``executemany`` (SQLAlchemy runs an
    ``INSERT ... RETURNING`` whose order it must keep one row at a time on
    SQLite), ids read back afterwards.  The transaction holds SQLite's write
    lock (BEGIN IMMEDIATE), so the rows above the largest id seen before the
    insert are exactly this batch's, and SQLite gives each new row an id above
    every existing one, so ascending ids are the insertion order."""
    before = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table.name}").scalar_one()
    conn.execute(insert(table), rows)
    ids = list(conn.exec_driver_sql(f"SELECT id FROM {table.name} WHERE id > ? ORDER BY id", (before,)).scalars())
    if len(ids) != len(rows):   # cannot happen under the write lock; never hand out a wrong id
        raise RuntimeError(f"intake: {len(rows)} rows inserted, {len(ids)} found above id {before}")
    return ids


class GroupCommit:
    """Group commit for concurrent arrivals: one writer thread takes every
    arrival waiting in its queue and stores them with :func:`accept_many`.

    Each caller gets a future that resolves to its id only after the commit
    (or to the exception); when a batch fails, its messages are retried one
    by one so a single bad message cannot make the others fail.  With one
    sender at a time this is exactly :func:`accept`.  ``on_stored(id)`` is
    called for each stored message after its future is resolved.

    The writer thread must outlive anything a batch does: a client that gave
    up while its commit waited has a cancelled future (resolving it raises
    ``InvalidStateError``), the database may raise anything.  Such a failure
    is logged and counted, never allowed to end the thread -- one dead
    writer would leave every later delivery waiting for nothing (issue 17,
    point 1).  :meth:`problem` says whether the writer is alive and how
    long the oldest waiting arrival has waited, for ``/healthz``.

    Two things keep the writer's loop short (issue 16): on PostgreSQL it
    keeps one connection of its own between batches, instead of a pool
    checkout with its pre-ping round trip per commit (a connection found
    broken is dropped, and a batch that failed because of it is stored once
    more on a fresh one); and the pokes go out from a thread of their own
    (a Redis round trip each in the scaled set-up), after the 250s, while
    the writer commits the next batch.  On SQLite each batch takes a pooled
    connection as before: a file connection held across batches would keep
    writing to a database file that was moved or replaced under it."""

    # An arrival older than this in the queue means the writer is stuck.
    STUCK_SECONDS = 90.0

    def __init__(self, db: Database, max_batch: int = 64,
                 on_stored: Callable[[int], None] | None = None) -> None:
        self.db = db
        self.max_batch = max_batch
        self.on_stored = on_stored
        self.batches = 0          # commits made, and messages stored by them
        self.stored = 0
        self.abandoned = 0        # stored, but the client had already gone
        self.failures = 0         # batches whose storing raised
        self.last_error = ""
        self._busy_since: float | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._conn: Connection | None = None     # PostgreSQL: the writer's own connection
        self._pokes: queue.SimpleQueue = queue.SimpleQueue()
        self._poker: threading.Thread | None = None
        if on_stored is not None:
            self._poker = threading.Thread(target=self._run_pokes, name="intake-poker", daemon=True)
            self._poker.start()
        self._thread = threading.Thread(target=self._run, name="intake-writer", daemon=True)
        self._thread.start()

    def submit(self, arrival: Arrival) -> Future[int]:
        future: Future[int] = Future()
        if not self._thread.is_alive():
            # Never queue behind a writer that is gone: answer 451 now.
            future.set_exception(RuntimeError("the intake writer is not running"))
            return future
        self._queue.put((arrival, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)
        if self._poker is not None:
            self._pokes.put(None)
            self._poker.join(30)
        if self.batches:
            log.info("intake stored %d message(s) in %d commit(s)", self.stored, self.batches)

    def problem(self) -> str | None:
        """``None`` when the writer works, else what is wrong (``/healthz``)."""
        if not self._thread.is_alive():
            return "intake writer thread is not running"
        since = self._busy_since
        if since is not None and time.monotonic() - since > self.STUCK_SECONDS:
            return f"intake writer has been storing one batch for {time.monotonic() - since:.0f} s"
        return None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._busy_since = time.monotonic()
            try:
                self._store(batch)
            except BaseException as exc:  # the thread must survive anything
                self.failures += 1
                self.last_error = repr(exc)[:500]
                log.exception("intake writer: a batch of %d failed; answering 451 to its senders", len(batch))
                for _, future in batch:
                    _resolve(future, exc=RuntimeError("storing failed"))
            finally:
                self._busy_since = None
            if stop:
                break
        self._drop_connection()

    def _store(self, batch: list[tuple[Arrival, Future[int]]]) -> None:
        # A client that already gave up (its future was cancelled) is not
        # waited for; its message is still stored if it is in the batch --
        # the sender will retry and the duplicate rule drops the second copy.
        try:
            ids = self._accept([arrival for arrival, _ in batch])
        except Exception as exc:
            self.failures += 1
            self.last_error = repr(exc)[:500]
            if len(batch) == 1:
                _resolve(batch[0][1], exc=exc)
                return
            # One at a time: one bad message must not fail the others.
            for arrival, future in batch:
                try:
                    inbound_id = self._accept([arrival])[0]
                except Exception as one:
                    _resolve(future, exc=one)
                else:
                    if not _resolve(future, result=inbound_id):
                        self.abandoned += 1
                    self._poke([inbound_id])
            return
        self.batches += 1
        self.stored += len(batch)
        for (_, future), inbound_id in zip(batch, ids):
            if not _resolve(future, result=inbound_id):
                self.abandoned += 1
        self._poke(ids)

    def _accept(self, arrivals: list[Arrival]) -> list[int]:
        """:func:`accept_many` on the writer's connection (PostgreSQL) or a
        pooled one (SQLite)."""
        if self.db.is_sqlite:
            return accept_many(self.db, arrivals)
        fresh = self._conn is None
        if fresh:
            self._conn = self.db.engine.connect()
        try:
            return accept_many(self.db, arrivals, self._conn)
        except DBAPIError as exc:
            self._drop_connection()
            if fresh or not exc.connection_invalidated:
                raise
        except BaseException:
            self._drop_connection()
            raise
        # The kept connection had broken (a server restart, an idle timeout):
        # once more on a fresh connection.  Had the break come after the
        # server committed, the second row is a duplicate that routing's
        # duplicate rule drops, as after a sender's retry.
        self._conn = self.db.engine.connect()
        try:
            return accept_many(self.db, arrivals, self._conn)
        except BaseException:
            self._drop_connection()
            raise

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # a broken connection may fail to close; it is gone either way
                log.debug("intake writer: closing its connection failed", exc_info=True)

    def _poke(self, ids: list[int]) -> None:
        """After the 250s are on their way: hand the ids to the poke thread."""
        if self._poker is not None:
            self._pokes.put(ids)

    def _run_pokes(self) -> None:
        """Tell the router.  A failed poke is only logged -- the row is
        stored and the reconciler finds it."""
        while True:
            ids = self._pokes.get()
            if ids is None:
                return
            for inbound_id in ids:
                try:
                    self.on_stored(inbound_id)
                except Exception:
                    log.exception("stored inbound %s but could not enqueue it; the reconciler will", inbound_id)


def _resolve(future: Future, *, result: int | None = None, exc: BaseException | None = None) -> bool:
    """Resolve ``future`` unless its caller has gone (cancelled); True when
    someone was still waiting."""
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
    except InvalidStateError:
        return False  # cancelled in between: nobody is waiting for it
    return True


def header_message_id(raw: bytes) -> str:
    """The Message-ID from the header block of ``raw``, or "" (no full parse)."""
    end = _HEADER_END.search(raw, 0, 256 * 1024)
    head = raw[: end.start() if end else 256 * 1024]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode("ascii", "replace") if match else ""
