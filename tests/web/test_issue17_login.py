"""Issue 17, points 11 and 12, against the real server (uvicorn as ``serve``
configures it, on loopback):

- 11: a rotating ``X-Forwarded-For`` from a local peer does not reset the
  login limit unless the peer is a configured proxy; a reviewer is not
  locked out by someone else's guessing (their own browser, or another
  address after a short delay, still gets in with the right password);
- 12: logout ends the session on the server: a cookie captured before
  logout opens nothing afterwards.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from mailbot_cli.processes import web_config
from reviewers.app import create_app
from reviewers.auth import LoginLimiter
from reviewers.sessions import COOKIE_NAME
from tests.web.conftest import PASSWORD


def _serve(ctx) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(web_config(ctx, create_app(ctx)))
    server.install_signal_handlers = lambda: None
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def base(web_ctx) -> Iterator[str]:
    yield from _serve(web_ctx)


@pytest.fixture
def proxied_base(web_ctx) -> Iterator[str]:
    web_ctx.settings.web.trusted_proxies = ["127.0.0.1"]
    yield from _serve(web_ctx)


def _login(browser: httpx.Client, email: str, password: str, forwarded_for: str = "") -> httpx.Response:
    page = browser.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return browser.post("/login", data={"email": email, "password": password, "csrf_token": token}, headers=headers)


def _logout(browser: httpx.Client) -> None:
    page = browser.get("/queue")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 303


def test_a_cookie_captured_before_logout_opens_nothing_after(base, alice):
    with httpx.Client(base_url=base) as browser:
        assert _login(browser, alice.email, PASSWORD).status_code == 303
        captured = browser.cookies.get(COOKIE_NAME)
        assert browser.get("/queue").status_code == 200
        _logout(browser)
    with httpx.Client(base_url=base, cookies={COOKIE_NAME: captured}) as thief:
        response = thief.get("/queue")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_logging_out_one_browser_leaves_the_other_logged_in(base, alice):
    with httpx.Client(base_url=base) as laptop, httpx.Client(base_url=base) as desktop:
        assert _login(laptop, alice.email, PASSWORD).status_code == 303
        assert _login(desktop, alice.email, PASSWORD).status_code == 303
        _logout(laptop)
        assert desktop.get("/queue").status_code == 200 and laptop.get("/queue").status_code == 303


def test_a_rotating_x_forwarded_for_from_an_untrusted_peer_is_ignored(web_ctx, base, alice):
    limit = web_ctx.settings.web.login_attempts_per_minute
    codes = []
    with httpx.Client(base_url=base) as attacker:
        for n in range(limit + 5):
            codes.append(_login(attacker, alice.email, "guess", forwarded_for=f"203.0.113.{n}").status_code)
    assert codes == [401] * limit + [429] * 5


def test_a_configured_proxy_is_believed(web_ctx, proxied_base, alice):
    limit = web_ctx.settings.web.login_attempts_per_minute
    with httpx.Client(base_url=proxied_base) as attacker:
        codes = [_login(attacker, alice.email, "guess", forwarded_for="203.0.113.7").status_code
                 for _ in range(limit + 1)]
    assert codes == [401] * limit + [429]
    # The reviewer, elsewhere behind the same proxy, is not locked out.
    with httpx.Client(base_url=proxied_base) as reviewer:
        assert _login(reviewer, alice.email, PASSWORD, forwarded_for="198.51.100.20").status_code == 303


def test_the_right_password_from_a_known_browser_works_while_the_account_is_attacked(web_ctx, base, alice):
    with httpx.Client(base_url=base) as own:
        assert _login(own, alice.email, PASSWORD).status_code == 303
        _logout(own)
        with httpx.Client(base_url=base) as attacker:        # same address (no proxy configured)
            codes = [_login(attacker, alice.email, "guess").status_code for _ in range(8)]
        assert codes[-1] == 429
        assert _login(own, alice.email, PASSWORD).status_code == 303
        assert own.get("/queue").status_code == 200


def test_limits_per_account_and_per_client_with_a_short_delay():
    limiter = LoginLimiter(per_minute=3, delay=30)
    for n in range(3):      # the account is attacked from three addresses
        assert limiter.check(f"10.0.0.{n}", "alice@x", now=n) == 0
    # over the account limit: a new address still gets its first try at once ...
    assert limiter.check("192.0.2.1", "alice@x", now=5) == 0
    # ... then one try per delay, not a lockout
    assert limiter.check("192.0.2.1", "alice@x", now=6) == 29
    assert limiter.check("192.0.2.1", "alice@x", now=35) == 0
    # other accounts are untouched; one address spraying accounts is limited
    assert limiter.check("10.0.0.0", "bob@x", now=7) == 0
    assert all(limiter.check("198.51.100.1", f"user{n}@x", now=8) == 0 for n in range(12))
    assert limiter.check("198.51.100.1", "user99@x", now=9) > 0
    # a known browser skips the per-address and per-account limits, not the per-pair one
    assert limiter.check("198.51.100.1", "user99@x", now=9, known=True) == 0
