"""The running process's collaborators, built once from settings.

Actors, CLI commands and the web app ask for :func:`current`; tests and the
``serve`` command call :func:`configure` with their own.  Collaborators are
created lazily so a process that never sends mail never opens a relay
connection.
"""

from __future__ import annotations

import threading
from functools import cached_property

from mailbot.config import Settings, load_settings
from mailbot.db import Database


class Context:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self._db = db
        # ``make_draft`` run elsewhere (``serve``: child processes, see
        # ``workflows.draft_process``); ``None`` drafts in the calling thread.
        self.drafter = None

    @cached_property
    def db(self) -> Database:
        if self._db is None:
            cfg = self.settings.database
            self._db = Database(self.settings.database_url, echo=cfg.echo, pool_size=cfg.pool_size)
        return self._db

    @cached_property
    def sender(self):
        """Where outbound mail goes: the SMTP relay, or the Maildir outbox."""
        from mailbot.mail.send import sender_for

        return sender_for(self.settings)

    @cached_property
    def health(self):
        """The probes of this process's running parts (``/healthz``)."""
        from mailbot.health import Health

        return Health()


_lock = threading.Lock()
_current: Context | None = None


def configure(context: Context) -> Context:
    global _current
    with _lock:
        _current = context
    return context


def current() -> Context:
    """The configured context, or one built from config.toml + environment."""
    global _current
    with _lock:
        if _current is None:
            _current = Context(load_settings())
        return _current
