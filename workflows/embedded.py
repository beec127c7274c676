"""The embedded queue: dramatiq Workers draining the in-memory StubBroker
inside the ``serve`` process, so no Redis is needed.

Two lanes, each with its own threads (``broker.embedded_threads`` each):

- the *quick* lane -- every queue but :data:`workflows.broker.SLOW`: routing
  (``process_inbound``, which answers a command in the same call), command
  replies and single sends;
- the *slow* lane -- ``workflows.broker.SLOW``: drafting consultations
  and bulk mail (digests, batches), work that takes seconds per message.

One shared pool let two big questions being drafted hold every thread while
a one-line HELP waited behind them (issue 17, point 15: 1.1-5.6 s after the
heaviest hostile messages).  With the lanes a command waits at most for the
routing of messages ahead of it, never for a draft.  In the scaled mode
(Redis) every ``mailbot worker`` consumes both queues unless told otherwise
(``dramatiq workflows.actors -Q default`` / ``-Q slow`` give each its own
processes).
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.common import q_name

from mailbot.context import Context


class EmbeddedWorkers:
    """The two lanes' workers, started and stopped together."""

    def __init__(self, ctx: Context) -> None:
        import workflows.actors  # noqa: F401  (declare every actor, so every queue exists)
        # Imported here, not at the top: importing workflows.broker installs a broker.
        from workflows.broker import SLOW

        broker = dramatiq.get_broker()
        # Each Worker registers its own _WorkerMiddleware (it adds consumers
        # for queues declared later, within that worker's queue list), and
        # dramatiq warns about the second one.  Two lanes with disjoint
        # queues are what is meant here: that one warning is dropped.
        logging.getLogger(f"dramatiq.broker.{type(broker).__name__}").addFilter(_expected_second_worker)
        threads = ctx.settings.broker.embedded_threads
        quick = {q_name(name) for name in broker.get_declared_queues()} - {SLOW}
        self.lanes = {
            "quick": dramatiq.Worker(broker, queues=quick, worker_threads=threads, worker_timeout=100),
            "slow": dramatiq.Worker(broker, queues={SLOW}, worker_threads=threads, worker_timeout=100),
        }

    def start(self) -> EmbeddedWorkers:
        for worker in self.lanes.values():
            worker.start()
        return self

    def stop(self) -> None:
        for worker in self.lanes.values():
            worker.stop()

    def problem(self) -> str | None:
        """``/healthz``: a lane whose threads have died does no work."""
        found = [f"{name} lane: {p}" for name, w in self.lanes.items() if (p := worker_problem(w))]
        return "; ".join(found) or None


def _expected_second_worker(record: logging.LogRecord) -> bool:
    return not (record.levelno == logging.WARNING and "_WorkerMiddleware" in record.getMessage())


def worker_problem(worker: dramatiq.Worker) -> str | None:
    """Why ``worker`` does no work (dead or missing threads), or ``None``."""
    threads = list(getattr(worker, "workers", []))
    consumers = list(getattr(worker, "consumers", {}).values())
    dead = sum(not t.is_alive() for t in threads) + sum(not t.is_alive() for t in consumers)
    if not threads:
        return "worker has no threads"
    return f"{dead} worker thread(s) are not running" if dead else None


def start_worker(ctx: Context) -> EmbeddedWorkers:
    """Start both lanes; ``.stop()`` ends them."""
    return EmbeddedWorkers(ctx).start()
