"""The ``run_command`` actor: answer a mail command (LOOKUP, SEARCH, CHECK,
HELP, and the job-board commands) with one automatic reply.

Thin on purpose: :func:`mailbot.commands.runner.run` does the work in one
transaction and is safe to run twice; this only sends the poke it returns.
The recovery rule registered here lets the reconciler finish commands whose
poke was lost (a crash between routing and answering).
"""

from __future__ import annotations

import dramatiq

from mailbot.commands import runner
from mailbot.context import current
from mailbot.services import recovery
from workflows.actors import RETRY, dispatch


@dramatiq.actor(time_limit=60_000, **RETRY)
def run_command(inbound_id: int) -> None:
    dispatch(runner.run(current(), inbound_id))


if runner.unanswered_commands not in recovery.RULES:
    recovery.RULES.append(runner.unanswered_commands)
