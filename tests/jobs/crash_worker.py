"""A digest worker that dies mid-transaction (run as a subprocess by
``test_killed_worker``).

It runs the real :func:`mailbot.jobs.digest.send_digest`; the only addition
is a pause right after the email was queued -- inside the open transaction,
before the run is marked sent and committed -- where it writes a marker
file, so the test knows when to ``kill -9`` it.

    python -m tests.jobs.crash_worker DB_URL VAR_DIR RUN_ID MARKER
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mailbot.config import load_settings
from mailbot.context import Context, configure
from mailbot.jobs import digest


def main(db_url: str, var_dir: str, run_id: int, marker: str) -> None:
    settings = load_settings(path=None, environ={}, overrides={"database.url": db_url, "service.var_dir": var_dir})
    ctx = configure(Context(settings))
    real_queue = digest.queue_wires

    def queue_then_hang(session, wires, **kwargs):
        ids = real_queue(session, wires, **kwargs)
        Path(marker).write_text(str(ids[0]))
        time.sleep(120)
        return ids

    digest.queue_wires = queue_then_hang
    digest.send_digest(ctx, run_id)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
