"""Re-enqueue unfinished work found in the database.

Runs once at start-up (after a crash, a Redis flush or an embedded restart
the queue may have lost messages) and then every ``broker.reconcile_seconds``.

Only what is really stuck is re-poked: a row left unfinished longer than
``broker.stuck_after_seconds`` (its lease) *and* with no message for it
still waiting in the broker -- queued, or delayed for a retry.  A long queue
is therefore left alone, while a Redis restart that lost the queue, a crash
that lost a poke, a worker killed in the middle of a message or an embedded
restart is recovered in full.  Several reconcilers may run at once (one per worker
process): on Redis each re-poke first takes a short lease key (``SET NX``),
so only one of them sends it; the actors are idempotent anyway, so a
duplicate poke would cost a little work and nothing else.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from mailbot.context import Context
from mailbot.services import Poke, recovery
from workflows.actors import dispatch

# Actors that do the same work for a row, one id or a batch at a time: a
# message held for either counts for both.
FAMILY = {"send_digests": "send_digest", "deliver_batch": "send_outbound"}

log = logging.getLogger(__name__)


def reconcile_once(ctx: Context, age: timedelta | None = None) -> int:
    """Poke everything left unfinished for longer than ``age``; returns the count."""
    if age is None:
        age = timedelta(seconds=ctx.settings.broker.stuck_after_seconds)
    with ctx.db.read() as session:
        pokes = recovery.unfinished(session, age)
    if not pokes:
        return 0
    broker = dramatiq.get_broker()
    waiting = len(pokes)
    pokes = _not_held(pokes, held(broker))
    pokes = _leased(broker, pokes, ctx.settings.broker.reconcile_seconds)
    dispatch(pokes)
    count = sum(len(p.id) if isinstance(p.id, list) else 1 for p in pokes)
    if count or waiting:
        log.info("reconciler re-enqueued %d item(s); %d poke(s) still queued were left alone",
                 count, waiting - len(pokes))
    return count


def held(broker: dramatiq.Broker) -> set[tuple[str, int]]:
    """``(actor, row id)`` of every message waiting in the broker: queued or
    delayed (retries).  Batch messages count per id."""
    found: set[tuple[str, int]] = set()
    for encoded in _held_messages(broker):
        try:
            data = json.loads(encoded)
            actor, first = FAMILY.get(data["actor_name"], data["actor_name"]), (data.get("args") or [None])[0]
        except (ValueError, KeyError, TypeError, IndexError):
            continue
        for row_id in first if isinstance(first, list) else [first]:
            if isinstance(row_id, int):
                found.add((actor, row_id))
    return found


def _held_messages(broker: dramatiq.Broker):
    if isinstance(broker, RedisBroker):
        # Waiting messages only: ids in the queue's list (and its delay
        # queue's), bodies from the matching ``.msgs`` hash.  A message a
        # worker has fetched is left out on purpose: if that worker was
        # killed, dramatiq gives it back only after its heartbeat times out,
        # and a re-poke past the lease is what finishes the row sooner.
        client = broker.client
        for queue in broker.get_declared_queues():
            for name in (queue, f"{queue}.DQ"):
                key = f"{broker.namespace}:{name}"
                ids = client.lrange(key, 0, -1)
                for start in range(0, len(ids), 1000):
                    yield from (m for m in client.hmget(f"{key}.msgs", ids[start:start + 1000]) if m)
    elif isinstance(broker, StubBroker):
        for queue in list(broker.queues.values()):
            with queue.mutex:
                pending = list(queue.queue)
            yield from pending


def _not_held(pokes: list[Poke], held_now: set[tuple[str, int]]) -> list[Poke]:
    kept = []
    for poke in pokes:
        actor = FAMILY.get(poke.actor, poke.actor)
        if isinstance(poke.id, list):
            ids = [i for i in poke.id if (actor, i) not in held_now]
            if ids:
                kept.append(Poke(poke.actor, ids))
        elif (actor, poke.id) not in held_now:
            kept.append(poke)
    return kept


def _leased(broker: dramatiq.Broker, pokes: list[Poke], seconds: float) -> list[Poke]:
    """On Redis, the pokes this reconciler won a short lease for (several
    worker processes reconcile at once; one re-poke per row is enough)."""
    if not isinstance(broker, RedisBroker) or not pokes:
        return pokes
    ttl = max(1, int(seconds))
    with broker.client.pipeline(transaction=False) as pipe:
        for poke in pokes:
            key = f"{broker.namespace}:repoke:{poke.actor}:{poke.id if not isinstance(poke.id, list) else poke.id[0]}"
            pipe.set(key, b"1", nx=True, ex=ttl)
        won = pipe.execute()
    return [poke for poke, ok in zip(pokes, won) if ok]


class Reconciler(threading.Thread):
    """Background thread: reconcile at start (everything, any age) and then
    periodically (work older than ``stuck_after_seconds``)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(name="mailbot-reconciler", daemon=True)
        self.ctx = ctx
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            reconcile_once(self.ctx, timedelta(0))
        except Exception:
            log.exception("start-up reconcile failed")
        while not self.stopping.wait(self.ctx.settings.broker.reconcile_seconds):
            try:
                reconcile_once(self.ctx)
            except Exception:
                log.exception("reconcile failed; will try again")

    def stop(self) -> None:
        self.stopping.set()
