"""The embedded queue: a dramatiq Worker draining the in-memory StubBroker
inside the ``serve`` process, so no Redis is needed."""

from __future__ import annotations

import dramatiq

from mailbot.context import Context


def start_worker(ctx: Context) -> dramatiq.Worker:
    import workflows.actors  # noqa: F401  (declare every actor)

    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=ctx.settings.broker.embedded_threads,
                             worker_timeout=100)
    worker.start()
    return worker
