"""Actors for inbound mail: route each stored message, once.

``process_inbound`` is poked by intake (``mailbot_cli.processes.on_stored``),
by ``mailbot inbound replay`` and by the reconciler for rows left in
``received``.  It only asks ``services.inbound`` to do the work and sends
the pokes it returns; running it twice is harmless.

A message routed as a command is answered in the same call
(:func:`workflows.commands.answer`) instead of through a second queue hop:
the hop cost a Redis round trip, a consumer poll and a fresh load of the
row, for work that follows routing directly.  The routed row and the parsed
request are handed over too, so answering reads and parses neither again.  If answering fails, the
``run_command`` poke is sent as before and that actor retries with backoff;
``runner.run`` is safe to run twice, so nothing is answered twice.
"""

from __future__ import annotations

import logging

import dramatiq

from mailbot.context import current
from mailbot.services import Poke, inbound
from workflows.actors import RETRY, dispatch
from workflows import commands  # (attribute looked up at call time: commands imports this module's importer)

log = logging.getLogger(__name__)


@dramatiq.actor(time_limit=120_000, **RETRY)
def process_inbound(inbound_id: int) -> None:
    ctx = current()
    later: list[Poke] = []
    routed = inbound.route_stored(ctx, inbound_id)
    for poke in routed.pokes:
        if poke.actor != "run_command":
            later.append(poke)
            continue
        try:
            # the row as routing committed it and the parsed request: neither read nor parsed again
            later.extend(commands.answer(ctx, poke.id, routed=routed.inbound, request=routed.message))
        except Exception:
            log.warning("answering command %s in the router failed; queued for the run_command actor",
                        poke.id, exc_info=True)
            later.append(poke)
    dispatch(later)
