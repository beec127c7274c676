"""Outbound delivery: queue a message durably, then send it -- once where
the transport allows it, and with the remaining window as small as it can be.

:func:`queue_message` stores the finished message -- Message-ID included --
in the caller's transaction, so the decision to reply and the reply itself
commit together.  :func:`deliver` is what the ``send_outbound`` actor runs:
it does nothing for a message that is no longer pending, marks it sent with
a conditional update, raises :class:`RetryLater` on a temporary failure and
records a permanent failure (5xx) where reviewers see it.

Before handing a message over, :func:`deliver` claims the attempt with a
committed compare-and-set on ``attempts`` and writes ``sending: attempt N``
into ``last_error`` (issue 17, point 8).  So:

- two workers poked for the same row cannot both send it at once: the
  attempt holds a lock (a PostgreSQL advisory lock, released by the
  database if the worker dies; in-process on embedded SQLite) and claims
  with a compare-and-set on ``attempts``, re-reading the state under it;
- the Maildir outbox names the file after the Message-ID and links it into
  ``new/`` atomically: a retry after a kill between writing and marking
  ``sent`` finds the file and writes nothing -- exactly once;
- an SMTP relay cannot be asked whether it already has a message, so a kill
  after the relay's 250 and before our commit still sends it again.  The
  retry says so in ``last_error`` ("the previous attempt did not finish"),
  and the reply keeps its Message-ID, so mail clients thread (and many
  collapse) the two copies.  ``docs/security.md`` states this window.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import String, bindparam, case, cast, func, insert, literal, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlmodel import Session
from sqlmodel import select as orm_select

from mailbot.config import Settings
from mailbot.context import Context
from mailbot.mail.addresses import BOUNCES, classify
from mailbot.mail.send import DeliveryError, as_bytes
from mailbot.models import OutboundMessage, OutboundState, utcnow
from mailbot.services.quarantine import quarantine

log = logging.getLogger(__name__)


_VERP_TAG = re.compile(r"(\d{1,12})-([0-9a-f]{12})")


class RetryLater(Exception):
    """A temporary delivery failure; the caller should try again later."""


def queue_message(session: Session, message: EmailMessage, *, kind: str,
                  consultation_id: int | None = None, inbound_id: int | None = None,
                  raw: bytes | None = None) -> OutboundMessage:
    """Store ``message`` as pending in the caller's transaction; returns the row
    (its id is what the send actor takes).  ``raw``: its wire bytes when the
    caller assembled them already (``compose.build_bytes``; then ``message``
    only supplies the headers)."""
    row = OutboundMessage(
        kind=kind, consultation_id=consultation_id, inbound_id=inbound_id,
        **_addressing(message), raw=raw if raw is not None else as_bytes(message),
    )
    session.add(row)
    session.flush()
    return row


def queue_wires(session: Session, wires: list, *, kind: str) -> list[int]:
    """Store finished messages as pending with one multi-row INSERT in the
    caller's transaction; their ids, in order.  Each of ``wires`` carries
    ``to_addr``, ``from_addr``, ``subject``, ``message_id`` and ``raw`` (the
    wire bytes; ``mailbot.jobs.digest_wire.Wire``) -- the bulk twin of
    :func:`queue_message`, without an ORM object per row."""
    if not wires:
        return []
    table = OutboundMessage.__table__
    now = utcnow()
    rows = [{"kind": kind, "consultation_id": None, "inbound_id": None, "to_addr": wire.to_addr,
             "from_addr": wire.from_addr, "subject": wire.subject[:2000], "message_id": wire.message_id,
             "raw": wire.raw, "state": OutboundState.PENDING.value, "attempts": 0, "last_error": "",
             "transport": "", "created_at": now, "sent_at": None, "next_attempt_at": None} for wire in wires]
    _fast_toast(session)
    result = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return [row_id for (row_id,) in result]


_lz4: dict[str, bool] = {}


def _fast_toast(session: Session) -> None:
    """On PostgreSQL 14+ built with lz4, compress this transaction's large
    values (the messages' ``raw``) with lz4 instead of the default pglz:
    about a third of the database's CPU per 40 KB digest went to pglz.
    A setting of this transaction only; reading needs nothing (each value
    records how it was compressed)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    key = bind.url.render_as_string()
    if key not in _lz4:
        _lz4[key] = bool(session.execute(text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")).scalar())
    if _lz4[key]:
        session.execute(text("SET LOCAL default_toast_compression = 'lz4'"))


def queue_reply(conn: Connection, message: EmailMessage, raw: bytes, *, kind: str,
                inbound_id: int | None = None, consultation_id: int | None = None,
                claimed: bool = False) -> int:
    """:func:`queue_message` for the automated replies' hot path: one prebuilt
    INSERT on ``conn`` (the caller's transaction) instead of an ORM object
    and a flush (issue 16); returns the new row's id.

    ``claimed``: the caller hands the message to the transport right after
    its commit (``deliver(..., claimed=True)``), so the row is stored with
    its first attempt already claimed, as :func:`deliver`'s claim would
    record it -- one write transaction less per reply.  Should the caller
    die before sending, the retry says the attempt did not finish, as after
    any claim."""
    return conn.execute(_QUEUE, {
        "b_kind": kind, "b_consultation_id": consultation_id, "b_inbound_id": inbound_id,
        **{f"b_{name}": value for name, value in _addressing(message).items()},
        "b_raw": raw, "b_created_at": utcnow(),
        "b_attempts": 1 if claimed else 0,
        "b_last_error": SENDING.format(n=1, at=utcnow()) if claimed else "",
    }).scalar_one()


def _addressing(message: EmailMessage) -> dict[str, str]:
    """The columns an outbound row takes from its message's headers."""
    return {
        "to_addr": message["To"].addresses[0].addr_spec if message["To"] else "",
        "from_addr": message["From"].addresses[0].addr_spec if message["From"] else "",
        "subject": str(message["Subject"] or ""),
        "message_id": str(message["Message-ID"]),
    }


_OUTBOUND = OutboundMessage.__table__
_QUEUE = insert(_OUTBOUND).values(
    **{name: bindparam(f"b_{name}") for name in ("kind", "consultation_id", "inbound_id", "to_addr", "from_addr",
                                                  "subject", "message_id", "raw", "created_at", "attempts",
                                                  "last_error")},
    state=OutboundState.PENDING, transport="",
).returning(_OUTBOUND.c.id)


def bounce_address(ctx: Context) -> str:
    """The plain bounce address (what VERP addresses are built on)."""
    return f"bounces@{ctx.settings.service.domain}"


def verp_address(settings: Settings, outbound_id: int, message_id: str) -> str:
    """Envelope sender of one outgoing message (VERP): ``bounces+<id>-<tag>@``.

    Bounces come back to a service address the router recognises, never to a
    person, and name the exact message that bounced.  The tag is derived from
    the message's random Message-ID, which only its recipient ever sees: a
    third party cannot forge a bounce that matches mail we sent."""
    return f"{BOUNCES}+{outbound_id}-{_verp_tag(message_id)}@{settings.service.domain}"


def verp_outbound(session: Session, settings: Settings, address: str) -> OutboundMessage | None:
    """The outbound message a VERP bounce address names, when its tag is right."""
    service = classify(settings, address)
    if service is None or service.kind != BOUNCES:
        return None
    match = _VERP_TAG.fullmatch(service.tag.lower())
    if match is None:
        return None
    row = session.get(OutboundMessage, int(match.group(1)))
    if row is None or not hmac.compare_digest(_verp_tag(row.message_id), match.group(2)):
        return None
    return row


def _verp_tag(message_id: str) -> str:
    return hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:12]


def deliver(ctx: Context, outbound_id: int, *, claimed: bool = False) -> str:
    """Send one pending message.  Returns ``"sent"``, ``"skipped"`` (not
    pending: already sent, failed, or unknown) or ``"failed"`` (permanent);
    raises :class:`RetryLater` for a temporary failure.

    ``claimed``: the caller has just committed the row with its first
    attempt claimed (``queue_reply(claimed=True)``); it is sent only if it
    is still pending at that first attempt once the lock is held."""
    with _attempt(ctx, outbound_id, claimed) as attempt:
        if attempt is None:
            return "skipped"   # not pending, or another worker is sending it right now
        try:
            ctx.sender.send(attempt.raw, envelope_from=verp_address(ctx.settings, outbound_id, attempt.message_id),
                            recipients=[attempt.to_addr])
        except DeliveryError as exc:
            return _record_failure(ctx, outbound_id, exc)
        attempt.mark_sent()
    return "sent"


@dataclass
class _Attempt:
    """One claimed attempt at a message: what to send, and how to say it went."""

    raw: bytes
    to_addr: str
    message_id: str
    mark_sent: Callable[[], None]


# Messages being sent by this process (SQLite: one process owns the file).
_in_flight: set[int] = set()
_in_flight_lock = threading.Lock()
# PostgreSQL advisory-lock namespace for "sending outbound row N".
_PG_LOCK_SPACE = 0x6D62   # "mb"
_PG_LOCK = select(func.pg_try_advisory_lock(_PG_LOCK_SPACE, bindparam("outbound_id")))
_PG_UNLOCK = select(func.pg_advisory_unlock(_PG_LOCK_SPACE, bindparam("outbound_id")))

SENDING = "sending: attempt {n} started {at:%Y-%m-%d %H:%M:%S} UTC"
UNFINISHED = "; the previous attempt did not finish (the message may have gone out once already)"


def _sending_note(suffix: str):
    """``SENDING`` for the attempt being claimed, written by the database
    from the row's own count (``attempts`` in SET is the value before it)."""
    head = SENDING.partition("{n}")[0]
    return (literal(head) + cast(_OUTBOUND.c.attempts + 1, String) + bindparam("started")
            + literal(suffix))


# The claim, in one statement: a pending row's attempt counted and marked
# "sending", its bytes returned.  The row is changed atomically, so no
# read-then-compare-and-set pair is needed (issue 16: one transaction and
# one statement instead of two of each).
_CLAIM = (
    update(_OUTBOUND)
    .where(_OUTBOUND.c.id == bindparam("outbound_id"), _OUTBOUND.c.state == OutboundState.PENDING)
    .values(attempts=_OUTBOUND.c.attempts + 1,
            last_error=case((_OUTBOUND.c.last_error.startswith("sending:"), _sending_note(UNFINISHED)),
                            else_=_sending_note("")))
    .returning(_OUTBOUND.c.raw, _OUTBOUND.c.to_addr, _OUTBOUND.c.message_id, _OUTBOUND.c.attempts,
               _OUTBOUND.c.last_error)
)
_MARK_ONE_SENT = (
    update(_OUTBOUND)
    .where(_OUTBOUND.c.id == bindparam("outbound_id"), _OUTBOUND.c.state == OutboundState.PENDING)
    .values(state=OutboundState.SENT, sent_at=bindparam("b_sent_at"), transport=bindparam("b_transport"),
            last_error="")
)


# The first attempt claimed when the row was queued, read back under the lock.
_FIRST_CLAIMED = select(_OUTBOUND.c.raw, _OUTBOUND.c.to_addr, _OUTBOUND.c.message_id).where(
    _OUTBOUND.c.id == bindparam("outbound_id"), _OUTBOUND.c.state == OutboundState.PENDING,
    _OUTBOUND.c.attempts == 1)


@contextmanager
def _attempt(ctx: Context, outbound_id: int, claimed: bool = False) -> Iterator[_Attempt | None]:
    """Lock the row for this attempt and claim it (committed before the
    send) -- or, when the row was queued ``claimed``, check that the claim
    still stands; ``None`` when it is not pending or another worker holds it.

    The lock is held while the attempt talks to the transport, so two pokes
    for the same row never send it at the same time.  On PostgreSQL it is a
    session advisory lock, taken in the claim's transaction and released in
    the sent mark's, on one connection (one pool checkout per send instead
    of four); a worker that dies releases it with its connection, so a
    crash never delays the retry.  On SQLite (embedded, one process) it is
    this process's own set of ids in flight."""
    params = {"outbound_id": outbound_id}
    if ctx.db.is_sqlite:
        with _in_process_lock(outbound_id) as held:
            if not held:
                yield None
                return
            if claimed:
                with ctx.db.read_engine.connect() as conn:   # a read: no write lock, no fsync
                    found = conn.execute(_FIRST_CLAIMED, params).first()
            else:
                with ctx.db.begin() as conn:
                    found = _claim_on(conn, outbound_id)
            if found is None:
                yield None
                return

            def mark_sent() -> None:
                with ctx.db.begin() as conn:
                    _mark_one_sent(ctx, conn, outbound_id)

            yield _Attempt(*found, mark_sent=mark_sent)
        return
    with ctx.db.engine.connect() as conn:
        locked = False
        try:
            with conn.begin():
                locked = bool(conn.execute(_PG_LOCK, params).scalar())
                if not locked:
                    found = None
                elif claimed:
                    found = conn.execute(_FIRST_CLAIMED, params).first()
                else:
                    found = _claim_on(conn, outbound_id)
            if found is None:
                yield None
                return

            def mark_sent() -> None:
                nonlocal locked
                with conn.begin():
                    _mark_one_sent(ctx, conn, outbound_id)
                    conn.execute(_PG_UNLOCK, params)
                locked = False

            yield _Attempt(*found, mark_sent=mark_sent)
        finally:
            if locked:
                _pg_unlock(conn, outbound_id)


def _pg_unlock(conn: Connection, outbound_id: int) -> None:
    """Release the row's advisory lock after an attempt that did not mark it
    sent; a broken connection has released it already (the server ends the
    session's locks with it)."""
    if conn.invalidated:
        return
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(_PG_UNLOCK, {"outbound_id": outbound_id})
        conn.commit()
    except Exception:  # the connection is going away with its locks; the original error matters more
        log.warning("outbound %s: could not release its send lock", outbound_id, exc_info=True)


@contextmanager
def _in_process_lock(outbound_id: int) -> Iterator[bool]:
    with _in_flight_lock:
        if outbound_id in _in_flight:
            yield False
            return
        _in_flight.add(outbound_id)
    try:
        yield True
    finally:
        with _in_flight_lock:
            _in_flight.discard(outbound_id)


def _claim(ctx: Context, outbound_id: int) -> tuple[bytes, str, str] | None:
    """Claim one attempt at a pending message, committed before the send;
    its raw bytes, recipient and Message-ID, or ``None`` when it is not pending."""
    with ctx.db.begin() as conn:
        return _claim_on(conn, outbound_id)


def _claim_on(conn: Connection, outbound_id: int) -> tuple[bytes, str, str] | None:
    """:func:`_claim` in the caller's transaction on ``conn``."""
    claimed = conn.execute(_CLAIM, {"outbound_id": outbound_id,
                                    "started": SENDING.partition("{n}")[2].format(at=utcnow())}).first()
    if claimed is None:
        return None
    raw, to_addr, message_id, attempt, note = claimed
    if note.endswith(UNFINISHED):
        log.warning("outbound %s: attempt %d follows one that did not finish; it may arrive twice",
                    outbound_id, attempt)
    return raw, to_addr, message_id


def _mark_one_sent(ctx: Context, conn: Connection, outbound_id: int) -> None:
    conn.execute(_MARK_ONE_SENT, {"outbound_id": outbound_id, "b_sent_at": utcnow(),
                                  "b_transport": ctx.sender.name})


def _record_failure(ctx: Context, outbound_id: int, exc: DeliveryError) -> str:
    max_attempts = ctx.settings.relay.max_attempts
    with ctx.db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        row.last_error = str(exc)[:2000]
        if exc.permanent or row.attempts >= max_attempts:
            row.state = OutboundState.FAILED
            quarantine(session, kind="outbound", ref_id=outbound_id, stage="delivery",
                       reason=("permanent delivery failure: " if exc.permanent else "gave up after retries: ") + str(exc))
            return "failed"
        row.next_attempt_at = utcnow() + timedelta(seconds=min(3600, 5 * 2 ** row.attempts))
    raise RetryLater(str(exc))


def mark_failed_after_retries(ctx: Context, outbound_id: int, reason: str) -> None:
    """Called when the queue gives up on a message: make the failure visible."""
    with ctx.db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is None or row.state != OutboundState.PENDING:
            return
        row.state = OutboundState.FAILED
        row.last_error = reason[:2000]
        quarantine(session, kind="outbound", ref_id=outbound_id, stage="delivery", reason=reason)


# Messages per relay hand-over in :func:`deliver_batch`, each chunk marked
# sent in one commit as soon as the relay has it.  The mark is what stops a
# retry from sending again, so a worker killed mid-batch re-sends at most
# the messages of the open chunk (one message with :func:`deliver`); a
# commit per message would cost a commit each, the price of a digest.
MARK_EVERY = 20
BATCH_SENDING = "sending: batch attempt started {at:%Y-%m-%d %H:%M:%S} UTC"


def deliver_batch(ctx: Context, outbound_ids: list[int]) -> list[int]:
    """Send the pending messages among ``outbound_ids`` over one relay
    session (pipelined where the relay offers it), claimed by batch first
    and marked sent every :data:`MARK_EVERY` messages.  Returns the ids that
    failed for now (the caller hands each to the one-message path, which
    retries with backoff); permanent failures -- a refused recipient, say
    -- are recorded for that message only, as :func:`deliver` records them."""
    retry: list[int] = []
    with _batch_lock(ctx, outbound_ids) as mine, _session_of(ctx.sender) as conn:
        claimed = claim_batch(ctx, mine)
        for start in range(0, len(claimed), MARK_EVERY):
            chunk = claimed[start:start + MARK_EVERY]
            outcomes = _send_many(conn, [(raw, verp_address(ctx.settings, outbound_id, message_id), [to_addr])
                                         for outbound_id, raw, to_addr, message_id in chunk])
            _mark_sent(ctx, [row[0] for row, outcome in zip(chunk, outcomes) if outcome is None])
            for row, outcome in zip(chunk, outcomes):
                if outcome is not None:
                    try:
                        _record_failure(ctx, row[0], outcome)
                    except RetryLater:
                        retry.append(row[0])
    return retry


@contextmanager
def _batch_lock(ctx: Context, outbound_ids: list[int]) -> Iterator[list[int]]:
    """:func:`_send_lock` for a batch: the ids among ``outbound_ids`` that no
    other attempt is sending now, held until the batch ends -- so a
    :func:`deliver` poked for one of them meanwhile skips it instead of
    taking the batch's ``sending:`` claim for an attempt that died."""
    if ctx.db.is_sqlite:
        with _in_flight_lock:
            mine = [i for i in dict.fromkeys(outbound_ids) if i not in _in_flight]
            _in_flight.update(mine)
        try:
            yield mine
        finally:
            with _in_flight_lock:
                _in_flight.difference_update(mine)
        return
    ids = sorted(set(outbound_ids))
    with ctx.db.engine.connect() as conn:
        mine = list(conn.execute(text(
            "SELECT i FROM unnest(CAST(:ids AS integer[])) AS t(i) WHERE pg_try_advisory_lock(:space, i)"),
            {"ids": ids, "space": _PG_LOCK_SPACE}).scalars())
        conn.commit()
        try:
            yield mine
        finally:
            if mine:
                conn.execute(text("SELECT pg_advisory_unlock(:space, i) FROM unnest(CAST(:ids AS integer[])) AS t(i)"),
                             {"ids": mine, "space": _PG_LOCK_SPACE})
                conn.commit()


def claim_batch(ctx: Context, outbound_ids: list[int]) -> list[tuple[int, bytes, str, str]]:
    """Claim the sendable messages among ``outbound_ids`` with one
    conditional UPDATE ... RETURNING, committed before anything is sent:
    pending, due, and not claimed by another attempt (``last_error`` starting
    ``sending:``).  On PostgreSQL the rows are picked ``FOR UPDATE SKIP
    LOCKED``, so two workers claiming the same ids split them; on SQLite the
    write transaction (BEGIN IMMEDIATE) holds the database.  A message
    :func:`deliver` claimed is skipped; a :func:`deliver` poked for a
    message claimed here skips it while the batch holds its send lock
    (:func:`_batch_lock`), and after a batch that died it claims the row
    as an unfinished attempt.  Returns
    (id, raw, recipient, Message-ID) rows in id order."""
    if not outbound_ids:
        return []
    now = utcnow()
    table = OutboundMessage.__table__
    sendable = (
        select(OutboundMessage.id)
        .where(OutboundMessage.id.in_(outbound_ids), OutboundMessage.state == OutboundState.PENDING,
               or_(OutboundMessage.next_attempt_at.is_(None), OutboundMessage.next_attempt_at <= now),
               ~OutboundMessage.last_error.startswith("sending:"))
        .with_for_update(skip_locked=True)
    )
    with ctx.db.session() as session:
        rows = session.execute(
            update(table).where(table.c.id.in_(sendable.scalar_subquery()))
            .values(attempts=table.c.attempts + 1, last_error=BATCH_SENDING.format(at=now))
            .returning(table.c.id, table.c.raw, table.c.to_addr, table.c.message_id)
        ).all()
    return sorted((row_id, raw, to_addr, message_id) for row_id, raw, to_addr, message_id in rows)


def _send_many(conn, messages: list[tuple[bytes, str, list[str]]]) -> list[DeliveryError | None]:
    """Each message's outcome over ``conn`` (``None``: accepted), through the
    sender's batch call where it has one."""
    send_many = getattr(conn, "send_many", None)
    if send_many is not None:
        return send_many(messages)
    outcomes: list[DeliveryError | None] = []
    for raw, envelope_from, recipients in messages:
        try:
            conn.send(raw, envelope_from=envelope_from, recipients=recipients)
            outcomes.append(None)
        except DeliveryError as exc:
            outcomes.append(exc)
    return outcomes


def _session_of(sender):
    connection = getattr(sender, "connection", None)
    return connection() if connection is not None else nullcontext(sender)


def _mark_sent(ctx: Context, sent: list[int]) -> None:
    """Mark (and forget) the ids in ``sent``: one conditional update, one commit."""
    if not sent:
        return
    with ctx.db.session() as session:
        session.exec(
            update(OutboundMessage)
            .where(OutboundMessage.id.in_(sent), OutboundMessage.state == OutboundState.PENDING)
            .values(state=OutboundState.SENT, sent_at=utcnow(), transport=ctx.sender.name, last_error="")
        )
    sent.clear()
