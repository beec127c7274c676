"""Actors: thin, each takes an id, asks a service to move that row forward,
and sends the pokes the service returns.  Every actor is safe to run twice.
"""

from __future__ import annotations

import logging

from workflows import broker as _configured  # noqa: F401  (must precede any actor)
from workflows.broker import SLOW

import dramatiq

from mailbot.context import current
from mailbot.services import Poke, delivery
from mailbot.services.quarantine import quarantine

log = logging.getLogger(__name__)

# Backoff for transient failures: 1 s doubling to 5 min, then give up and
# quarantine (see ``on_exhausted``).
RETRY = dict(max_retries=12, min_backoff=1_000, max_backoff=300_000, on_retry_exhausted="on_exhausted")


def dispatch(pokes: list[Poke]) -> None:
    """Send each poke to its actor."""
    broker = dramatiq.get_broker()
    for poke in pokes:
        broker.get_actor(poke.actor).send(poke.id)


@dramatiq.actor(time_limit=120_000, **RETRY)
def send_outbound(outbound_id: int) -> None:
    try:
        delivery.deliver(current(), outbound_id)
    except delivery.RetryLater as exc:
        raise dramatiq.Retry(str(exc)) from None


@dramatiq.actor(time_limit=600_000, **RETRY, queue_name=SLOW)
def deliver_batch(outbound_ids: list[int]) -> None:
    """Send a batch of queued messages (digests) over one relay session; a
    message that failed for now goes on alone through ``send_outbound``,
    which retries it with backoff."""
    dispatch([Poke("send_outbound", i) for i in delivery.deliver_batch(current(), outbound_ids)])


@dramatiq.actor(max_retries=0)
def on_exhausted(message_data: dict, retry_info: dict) -> None:
    """The queue gave up on a message: record why, where reviewers see it."""
    actor = message_data.get("actor_name", "?")
    args = message_data.get("args") or [None]
    ref_id = args[0] if isinstance(args[0], int) else None
    reason = f"{actor} failed {retry_info.get('retries')} times; last error: " + (
        (message_data.get("options") or {}).get("traceback", "").strip().splitlines()[-1:] or ["?"]
    )[0]
    ctx = current()
    if actor == "send_outbound" and ref_id is not None:
        delivery.mark_failed_after_retries(ctx, ref_id, reason)
        return
    with ctx.db.session() as session:
        quarantine(session, kind=actor, ref_id=ref_id, stage="queue", reason=reason,
                   detail=(message_data.get("options") or {}).get("traceback", ""))


# Actors from the other parts of the service register here.
from workflows import inbound as _inbound  # noqa: E402,F401
from workflows import commands as _commands  # noqa: E402,F401
from workflows import consultation as _consultation  # noqa: E402,F401
from workflows import jobs as _jobs  # noqa: E402,F401
