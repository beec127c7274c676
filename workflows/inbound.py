"""Actors for inbound mail: route each stored message, once.

``process_inbound`` is poked by intake (``mailbot_cli.processes.on_stored``),
by ``mailbot inbound replay`` and by the reconciler for rows left in
``received``.  It only asks ``services.inbound`` to do the work and sends
the pokes it returns; running it twice is harmless.
"""

from __future__ import annotations

import dramatiq

from mailbot.context import current
from mailbot.services import inbound
from workflows.actors import RETRY, dispatch


@dramatiq.actor(time_limit=120_000, **RETRY)
def process_inbound(inbound_id: int) -> None:
    dispatch(inbound.process(current(), inbound_id))
