"""The ``run_command`` actor: answer a mail command (LOOKUP, SEARCH, CHECK,
HELP, and the job-board commands) with one automatic reply.

Thin on purpose: :func:`mailbot.commands.runner.run` does the work in one
transaction and is safe to run twice.  The reply it queued is handed to the
relay right here rather than through another queue hop -- automatic replies
are promised "within seconds", and each hop costs a consumer poll -- and only
a failure to send goes through the ``send_outbound`` actor, which retries
with backoff.  For the same reason the router (``workflows.inbound``) calls
:func:`answer` itself for a message it has just routed as a command; the
``run_command`` actor is the path for retries, replays and the reconciler.
Commands whose poke was lost (a crash between routing and answering) are
found by the reconciler (``mailbot.services.recovery``).
"""

from __future__ import annotations

import logging
from email.message import Message

import dramatiq

from mailbot.commands import runner
from mailbot.context import Context, current
from mailbot.models import InboundRow
from mailbot.services import Poke, delivery
from workflows.actors import RETRY, dispatch

log = logging.getLogger(__name__)


def answer(ctx: Context, inbound_id: int, *, routed: InboundRow | None = None,
           request: Message | None = None) -> list[Poke]:
    """Answer the command and hand the reply to the relay at once; returns
    the pokes still to send (a reply the relay did not take goes to
    ``send_outbound``).  Raises what ``runner.run`` raises.  ``routed`` and
    ``request``: what the router has just committed and parsed (see
    ``runner.run``)."""
    later: list[Poke] = []
    # queued with its first attempt claimed: it is sent right here (issue 16: a transaction less)
    for poke in runner.run(ctx, inbound_id, routed=routed, request=request, claim=True):
        if poke.actor != "send_outbound":
            later.append(poke)
            continue
        try:
            delivery.deliver(ctx, poke.id, claimed=True)
        except Exception as exc:  # RetryLater or anything else: the send actor retries with backoff
            log.info("reply %s not sent at once (%s); queued for retry", poke.id, exc)
            later.append(poke)
    return later


@dramatiq.actor(time_limit=60_000, **RETRY)
def run_command(inbound_id: int) -> None:
    dispatch(answer(current(), inbound_id))
