"""Consultation actors: thin, taking ids, safe to run twice.

``advance_consultation(cid)`` moves a consultation one machine step on
(acknowledge, draft, mark sent); ``consultation_followup(inbound_id)``
reopens a consultation when the asker writes again.  The work and its
conditional state changes live in :mod:`mailbot.services.consultations`.

An approved answer still waiting for delivery is "look again later, not an
error": the actor re-sends itself with a delay until delivery is final.
Follow-ups whose poke was lost are found by the reconciler
(``mailbot.services.recovery``).
"""

from __future__ import annotations

import dramatiq

from mailbot.context import current
from mailbot.services import consultations
from workflows.actors import RETRY, dispatch
from workflows.broker import SLOW

# Drafting may wait on an LLM: timeout x (retries + 1) plus backoff.
DRAFT_TIME_LIMIT_MS = 15 * 60 * 1000


@dramatiq.actor(time_limit=DRAFT_TIME_LIMIT_MS, **RETRY, queue_name=SLOW)
def advance_consultation(consultation_id: int) -> None:
    try:
        dispatch(consultations.advance(current(), consultation_id))
    except consultations.NotYetDelivered as exc:
        # Waiting for the send_outbound actor is not a failure: look again
        # later without using up this message's retries.  Delivery ends in
        # sent or failed, so this stops.
        advance_consultation.send_with_options(args=(consultation_id,), delay=exc.delay_ms)
    except consultations.TryLater as exc:
        raise dramatiq.Retry(str(exc)) from None  # the actor's backoff: 1 s doubling to 5 min


@dramatiq.actor(time_limit=60_000, **RETRY)
def consultation_followup(inbound_id: int) -> None:
    try:
        dispatch(consultations.followup(current(), inbound_id))
    except consultations.TryLater as exc:
        raise dramatiq.Retry(str(exc)) from None


