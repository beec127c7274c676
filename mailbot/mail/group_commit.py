"""Group commit: the SMTP listener's writer thread.

Concurrent arrivals wait in one queue; a writer thread takes all of them
and stores them with :func:`mailbot.mail.intake.accept_many` -- one
transaction, one fsync for the lot.  Each sender learns its row's id only
after that commit, and only then does the listener answer 250.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from mailbot.db import Database
from mailbot.mail.intake import Arrival, accept_many

log = logging.getLogger(__name__)

# A waiter: a concurrent Future (:meth:`GroupCommit.submit`, any thread) or
# an asyncio Future on the loop that awaits it (:meth:`GroupCommit.store`).
Waiter = Future | asyncio.Future
# What became of one arrival: its waiter, and its id or the exception.
Outcome = tuple[Waiter, int | None, BaseException | None]


class GroupCommit:
    """Group commit for concurrent arrivals: one writer thread takes every
    arrival waiting in its queue and stores them with :func:`accept_many`.

    Each caller learns its id only after the commit (or gets the exception);
    when a batch fails, its messages are retried one by one so a single bad
    message cannot make the others fail.  With one sender at a time this is
    exactly :func:`mailbot.mail.intake.accept`.  ``on_stored(id)`` is called
    for each stored message after its sender was told.

    The writer thread must outlive anything a batch does: a client that gave
    up while its commit waited has a cancelled future, the database may
    raise anything.  Such a failure is logged and counted, never allowed to
    end the thread -- one dead writer would leave every later delivery
    waiting for nothing (issue 17, point 1).  :meth:`problem` says whether
    the writer is alive and how long the oldest waiting arrival has waited,
    for ``/healthz``.

    What keeps the writer's loop and the hand-offs short (issue 16):

    - the listener's event loop awaits :meth:`store`, an asyncio future of
      its own loop; the writer resolves a whole batch's futures in ONE
      callback on that loop, so a batch costs the loop one wake-up, not one
      thread-safe call (and a concurrent future wrapped in an asyncio one)
      per message;
    - on PostgreSQL the writer keeps one connection of its own between
      batches (no pool checkout with its pre-ping round trip per commit; a
      connection found broken is dropped, and a batch that failed because
      of it is stored once more on a fresh one), in autocommit: a batch is
      one INSERT statement, which the server commits before it reports the
      statement done -- one round trip per batch instead of three (BEGIN,
      INSERT, COMMIT);
    - the pokes go out from a thread of their own (a Redis round trip each
      in the scaled set-up) while the writer commits the next batch.

    On SQLite each batch takes a pooled connection: a file connection held
    across batches would keep writing to a database file that was moved or
    replaced under it."""

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

    async def store(self, arrival: Arrival) -> int:
        """From an event loop: the stored row's id, once its commit is done."""
        waiter = asyncio.get_running_loop().create_future()
        self._enqueue(arrival, waiter)
        return await waiter

    def submit(self, arrival: Arrival) -> Future[int]:
        """From any thread: a future of the stored row's id."""
        future: Future[int] = Future()
        self._enqueue(arrival, future)
        return future

    def _enqueue(self, arrival: Arrival, waiter: Waiter) -> None:
        if not self._thread.is_alive():
            # Never queue behind a writer that is gone: answer 451 now.
            raise RuntimeError("the intake writer is not running")
        self._queue.put((arrival, waiter))

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
                failed = RuntimeError("storing failed")
                self._settle([(waiter, None, failed) for _, waiter in batch])
            finally:
                self._busy_since = None
            if stop:
                break
        self._drop_connection()

    def _store(self, batch: list[tuple[Arrival, Waiter]]) -> None:
        # A client that already gave up (its future was cancelled) is not
        # waited for; its message is still stored if it is in the batch --
        # the sender will retry and the duplicate rule drops the second copy.
        try:
            ids = self._accept([arrival for arrival, _ in batch])
        except Exception as exc:
            self.failures += 1
            self.last_error = repr(exc)[:500]
            if len(batch) == 1:
                self._settle([(batch[0][1], None, exc)])
                return
            # One at a time: one bad message must not fail the others.
            outcomes: list[Outcome] = []
            stored: list[int] = []
            for arrival, waiter in batch:
                try:
                    inbound_id = self._accept([arrival])[0]
                except Exception as one:
                    outcomes.append((waiter, None, one))
                else:
                    outcomes.append((waiter, inbound_id, None))
                    stored.append(inbound_id)
            self._settle(outcomes)
            self._poke(stored)
            return
        self.batches += 1
        self.stored += len(batch)
        self._settle([(waiter, inbound_id, None) for (_, waiter), inbound_id in zip(batch, ids)])
        self._poke(ids)

    def _accept(self, arrivals: list[Arrival]) -> list[int]:
        """:func:`accept_many` on the writer's connection (PostgreSQL) or a
        pooled one (SQLite)."""
        if self.db.is_sqlite:
            return accept_many(self.db, arrivals)
        fresh = self._conn is None
        if fresh:
            self._conn = self._connect()
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
        self._conn = self._connect()
        try:
            return accept_many(self.db, arrivals, self._conn)
        except BaseException:
            self._drop_connection()
            raise

    def _connect(self) -> Connection:
        """The writer's kept PostgreSQL connection, in autocommit: a batch is
        one statement, committed by the server before it answers."""
        return self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # a broken connection may fail to close; it is gone either way
                log.debug("intake writer: closing its connection failed", exc_info=True)

    def _settle(self, outcomes: list[Outcome]) -> None:
        """Tell each waiter what became of its arrival: concurrent futures
        here, asyncio futures in one callback on their own loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for outcome in outcomes:
            waiter = outcome[0]
            if isinstance(waiter, asyncio.Future):
                by_loop.setdefault(waiter.get_loop(), []).append(outcome)
            elif not _resolve(*outcome):
                self.abandoned += 1
        for loop, on_loop in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._settle_on_loop, on_loop)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                self.abandoned += len(on_loop)

    def _settle_on_loop(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if not _resolve(*outcome):
                self.abandoned += 1

    def _poke(self, ids: list[int]) -> None:
        """After the senders were told: hand the ids to the poke thread."""
        if self._poker is not None and ids:
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


def _resolve(waiter: Waiter, result: int | None, exc: BaseException | None) -> bool:
    """Resolve ``waiter`` unless its caller has gone (cancelled); True when
    someone was still waiting.  Asyncio futures only on their loop's thread."""
    if waiter.done():
        return False  # cancelled: nobody is waiting for it
    try:
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(result)
    except (InvalidStateError, asyncio.InvalidStateError):
        return False  # cancelled in between (a concurrent future, from another thread)
    return True
