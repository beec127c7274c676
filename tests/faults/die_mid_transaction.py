"""Run one service step in a process that dies (SIGKILL) inside its
database transaction, right after a chosen SQL statement ran.

    python tests/faults/die_mid_transaction.py process_inbound|advance|deliver <id> "<SQL prefix>"

Configured from MAILBOT_* like any mailbot process.  Exits 3 if the
statement never ran (the test then knows the fault was not injected).
Used by ``test_db_connection_lost.py``.
"""

from __future__ import annotations

import os
import signal
import sys

from sqlalchemy import event

from mailbot.config import load_settings
from mailbot.context import Context, configure
from mailbot.services import consultations, delivery, inbound


def main() -> None:
    step, ident, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3].upper()
    ctx = configure(Context(load_settings(path=None)))

    @event.listens_for(ctx.db.engine, "after_cursor_execute")
    def die(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(prefix):
            os.kill(os.getpid(), signal.SIGKILL)   # the transaction is open: no commit, no rollback

    {"process_inbound": inbound.process, "advance": consultations.advance,
     "deliver": delivery.deliver}[step](ctx, ident)
    sys.exit(3)


if __name__ == "__main__":
    main()
