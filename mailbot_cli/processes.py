"""Starting and stopping the parts of the service.

``serve`` runs every part in one process (embedded mode: SQLite and an
in-memory queue).  ``smtpd``, ``web``, ``worker`` and ``imap`` run one part
each, for the scaled mode where a Redis broker connects them.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailbot.context import Context
from mailbot.services import Poke

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("mailbot")


@dataclass
class Running:
    """What has been started, so it can be stopped in reverse order."""

    ctx: Context
    stoppers: list[tuple[str, Any]] = field(default_factory=list)
    smtp_port: int | None = None
    web_port: int | None = None

    def add(self, name: str, stop) -> None:
        self.stoppers.append((name, stop))

    def stop(self) -> None:
        for name, stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:  # keep stopping the rest
                log.exception("error stopping %s", name)
        self.stoppers.clear()


def prepare_database(ctx: Context) -> None:
    """Embedded SQLite is upgraded in place; a shared database must already be
    at the current schema (``mailbot db upgrade`` is the operator's step)."""
    if ctx.db.is_sqlite:
        ctx.db.upgrade()
        return
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(ctx.db.alembic_config()).get_heads())
    current = ctx.db.current_revisions()
    if current != heads:
        raise SystemExit(f"database schema is at {sorted(current) or 'nothing'}, code expects {sorted(heads)}: run `mailbot db upgrade`")


def on_stored(inbound_id: int) -> None:
    """Intake stored a message: poke the router."""
    from workflows.actors import dispatch

    dispatch([Poke("process_inbound", inbound_id)])


def start(ctx: Context, *, smtp: bool = False, web: bool = False, worker: bool = False,
          imap: bool = False, load_codes: bool = False) -> Running:
    """Start the chosen parts; returns a handle whose ``stop()`` ends them."""
    import workflows.broker

    workflows.broker.install(ctx.settings)
    import workflows.actors  # noqa: F401  (declare actors on the installed broker)

    running = Running(ctx)
    try:
        prepare_database(ctx)
        if load_codes and ctx.settings.codes.load_on_serve:
            from mailbot.codes.importers import ensure_loaded

            ensure_loaded(ctx)
        if worker:
            _start_worker(ctx, running)
            if load_codes:  # `serve`: the process that answers LOOKUPs
                from mailbot.codes.knowledge import warm_in_background

                warm_in_background(ctx.db.read)
        if smtp and ctx.settings.smtp.enabled:
            from mailbot.mail.smtp_listener import SmtpListener

            listener = SmtpListener(ctx, on_stored=on_stored)
            listener.start()
            running.smtp_port = listener.port
            running.add("smtp", listener.stop)
            log.info("SMTP listener on %s:%s", ctx.settings.smtp.host, listener.port)
        if web and ctx.settings.web.enabled:
            _start_web(ctx, running)
        if imap and ctx.settings.imap.host:
            from mailbot.mail.imap_poller import ImapPoller

            poller = ImapPoller(ctx, on_stored=on_stored)
            poller.start()
            running.add("imap", poller.stop)
    except BaseException:
        running.stop()
        raise
    return running


def _start_worker(ctx: Context, running: Running) -> None:
    from workflows.embedded import start_worker
    from workflows.reconciler import Reconciler
    from workflows.scheduler import Scheduler

    if ctx.settings.embedded and ctx.settings.broker.draft_processes:
        from workflows.draft_process import DraftProcesses

        ctx.drafter = DraftProcesses(ctx.settings, ctx.settings.broker.draft_processes)
        running.add("drafting processes", ctx.drafter.shutdown)
        ctx.health.register("drafting", ctx.drafter.problem)
    workers = start_worker(ctx)
    running.add("worker", workers.stop)
    ctx.health.register("worker", workers.problem)
    reconciler = Reconciler(ctx)
    reconciler.start()
    running.add("reconciler", reconciler.stop)
    scheduler = Scheduler(ctx)
    scheduler.start()
    running.add("scheduler", scheduler.stop)


def _worker_problem(worker) -> str | None:
    """``/healthz``: a queue worker whose threads have died does no work."""
    from workflows.embedded import worker_problem

    return worker_problem(worker)


def web_config(ctx: Context, app) -> "uvicorn.Config":
    """uvicorn's config for the reviewer app.  Forwarded headers are believed
    only from ``web.trusted_proxies``: uvicorn's own default trusts any
    loopback peer, so anything on the host -- or a proxy passing the header
    through -- could pick its client address and walk past the login limiter."""
    import uvicorn

    proxies = list(ctx.settings.web.trusted_proxies)
    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies or [])


def _start_web(ctx: Context, running: Running) -> None:
    import uvicorn

    from mailbot.sockets import tcp_listener
    from reviewers.app import create_app

    sock = tcp_listener(ctx.settings.web.host, ctx.settings.web.port)    # TCP_NODELAY on every response
    running.web_port = sock.getsockname()[1]
    config = web_config(ctx, create_app(ctx))
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # the main thread owns signals
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="mailbot-web", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    running.add("web", stop)
    log.info("web app on http://%s:%s/", ctx.settings.web.host, running.web_port)


def wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def serve(ctx: Context) -> None:
    if not ctx.settings.embedded:
        log.info("broker.url is set: serve runs every part against %s", ctx.settings.broker.url)
    running = start(ctx, smtp=True, web=True, worker=True, imap=True, load_codes=True)
    log.info("mailbot ready (SMTP %s, web %s); Ctrl-C stops", running.smtp_port, running.web_port)
    try:
        wait_for_signal()
    finally:
        running.stop()


def run_parts(ctx: Context, **parts: bool) -> None:
    running = start(ctx, **parts)
    try:
        wait_for_signal()
    finally:
        running.stop()
