"""A live reviewer app for the browser tests: uvicorn on a loopback port,
the embedded queue drained by a real dramatiq worker, outbound mail going to
an aiosmtpd relay sink -- and headless Debian Chromium through Playwright."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mailbot.context import Context, configure
from tests.conftest import make_settings
from tests.support.net import free_port, wait_for_port
from tests.support.relay_sink import RelaySink
from tests.web.conftest import SECRET, add_reviewer, seed_consultation  # noqa: F401  (re-exported for tests)



@dataclass
class Live:
    url: str
    ctx: Context
    relay: RelaySink


def serve_app(ctx: Context, port: int):
    """Run the app with uvicorn in a thread; returns a stop function."""
    import uvicorn

    from reviewers.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None
    thread = threading.Thread(target=server.run, daemon=True, name="test-web")
    thread.start()
    wait_for_port(port)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return stop


@pytest.fixture
def live(tmp_path, db) -> Iterator[Live]:
    import dramatiq

    with RelaySink() as relay:
        settings = make_settings(tmp_path, db, **{"web.session_secret": SECRET, "relay.host": "127.0.0.1",
                                                  "relay.port": relay.port})
        ctx = configure(Context(settings, db=db))
        import workflows.broker  # after configure: importing it installs a broker for current()

        broker = workflows.broker.install(settings)   # a fresh in-memory queue for this test
        import workflows.actors  # noqa: F401  (declare every actor on it)

        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        port = free_port()
        stop = serve_app(ctx, port)
        try:
            yield Live(url=f"http://127.0.0.1:{port}", ctx=ctx, relay=relay)
        finally:
            stop()
            worker.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()
