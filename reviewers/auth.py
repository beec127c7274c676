"""Who may see what.

Every route requires a logged-in, active reviewer, except routes explicitly
marked :func:`public` (login, ``/healthz``, ``/metrics`` with its own check,
the public subscriber endpoints).  This is enforced by :func:`gate`, a
dependency of the whole app, so a new route is protected by default.
Unauthenticated page requests (GET/HEAD from a browser) are redirected to
the login page; anything else -- a POST, a script asking for JSON -- gets 401.  :func:`require_reviewer` and :func:`require_admin`
give routes the account.

Logins are rate limited per client address, per account and per both
(``web.login_attempts_per_minute``, see :class:`LoginLimiter`); the client
address is the TCP peer unless it is one of ``web.trusted_proxies``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Depends, Request

from mailbot.models import Reviewer, ReviewerRole
from reviewers import csrf, sessions
from reviewers.sessions import session_of

F = TypeVar("F", bound=Callable[..., Any])
ACCESS_ATTR = "__mailbot_access__"


@dataclass(frozen=True)
class Access:
    public: bool = True
    csrf: bool = True


class LoginRequired(Exception):
    """No (valid) session: redirect to the login page, or 401."""


class Forbidden(Exception):
    """Logged in, but not allowed (e.g. not an admin)."""


def public(fn: F | None = None, *, csrf: bool = True) -> Any:
    """Mark a route function as reachable without login.  Put it *below* the
    router decorator::

        @router.get("/healthz")
        @public
        def healthz(): ...

    ``csrf=False`` also exempts its POSTs from the CSRF check (only for posts
    that come from outside the site, such as RFC 8058 one-click unsubscribe).
    """

    def mark(f: F) -> F:
        setattr(f, ACCESS_ATTR, Access(public=True, csrf=csrf))
        return f

    return mark(fn) if fn is not None else mark


def access_of(endpoint: Any) -> Access | None:
    return getattr(endpoint, ACCESS_ATTR, None)


def current_reviewer(request: Request) -> Reviewer | None:
    """The logged-in active reviewer (loaded once per request), or ``None``."""
    if hasattr(request.state, "reviewer"):
        return request.state.reviewer
    reviewer = None
    cookie = session_of(request)
    rid = cookie.reviewer_id
    ctx = request.app.state.ctx
    # The signed cookie alone is not enough: its server-side session must be
    # live (logout ends it; see reviewers.sessions).
    if rid is not None and sessions.live(ctx.db, cookie.session_token, rid, ctx.settings.web.session_hours * 3600):
        with ctx.db.read() as session:
            found = session.get(Reviewer, rid)
        if found is not None and found.active:
            reviewer = found
    request.state.reviewer = reviewer
    return reviewer


async def gate(request: Request) -> None:
    """App-wide dependency: login for every non-public route, CSRF for every
    unsafe method."""
    access = access_of(request.scope.get("endpoint"))
    if access is None and current_reviewer(request) is None:
        raise LoginRequired()
    if request.method not in csrf.SAFE_METHODS and (access is None or access.csrf):
        await csrf.verify(request)


def require_reviewer(request: Request) -> Reviewer:
    reviewer = current_reviewer(request)
    if reviewer is None:
        raise LoginRequired()
    return reviewer


def require_admin(reviewer: Reviewer = Depends(require_reviewer)) -> Reviewer:
    if reviewer.role != ReviewerRole.ADMIN:
        raise Forbidden()
    return reviewer


class LoginLimiter:
    """Login attempts, limited three ways in any sliding minute (issue 17,
    point 11), without ever locking the right password out for long:

    - per client address and account: ``per_minute`` -- nobody guesses
      faster than that at one account from one place (known browsers are
      counted apart from unknown ones at the same address);
    - per client address, over all accounts: ``4 x per_minute`` -- one
      address spraying many accounts;
    - per account, over all addresses: ``per_minute``; past it, each address
      may still try once every ``delay`` seconds, so an attacker elsewhere
      (or a rotating ``X-Forwarded-For`` -- only trusted from
      ``web.trusted_proxies``) cannot lock the reviewer out, only slow
      themselves down.

    A *known* browser -- one this account logged in from before (the session
    cookie remembers it across logout) -- skips the per-address and
    per-account limits: the right password from the reviewer's own browser
    works while someone else is guessing.  Successful logins count too: a
    guessing script gains nothing from interleaving a known password.
    The limiter lives in the process: with several web processes behind a
    balancer each enforces its own limit."""

    def __init__(self, per_minute: int, window: float = 60.0, delay: float = 30.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self.delay = delay
        self._attempts: dict[tuple, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str, email: str, *, known: bool = False, now: float | None = None) -> int:
        """Record an attempt and return 0, or refuse it: the seconds to wait."""
        now = time.monotonic() if now is None else now
        email = email.strip().lower()
        # A known browser counts apart from everyone else at its address:
        # strangers behind the same proxy cannot use up its attempts.
        pair = ("known" if known else "pair", client, email)
        by_client, by_account = ("client", client), ("account", email)
        with self._lock:
            if len(self._attempts) > 30_000:  # forget idle keys so memory stays bounded
                self._attempts = {k: v for k, v in self._attempts.items() if v and v[-1] > now - self.window}
            mine = self._recent(pair, now)
            if len(mine) >= self.per_minute:
                return self._wait(mine, now)
            if not known:
                spraying = self._recent(by_client, now)
                if len(spraying) >= 4 * self.per_minute:
                    return self._wait(spraying, now)
                if len(self._recent(by_account, now)) >= self.per_minute and mine and now - mine[-1] < self.delay:
                    return max(1, math.ceil(self.delay - (now - mine[-1])))
            for key in (pair, by_client, by_account):
                self._recent(key, now).append(now)
            return 0

    def allow(self, client: str, email: str, now: float | None = None, *, known: bool = False) -> bool:
        """Record an attempt; False when it is over a limit."""
        return self.check(client, email, known=known, now=now) == 0

    def retry_after(self, client: str, email: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        attempts = self._attempts.get(("pair", client, email.strip().lower()))
        if not attempts:
            return 0
        return self._wait(attempts, now)

    def _recent(self, key: tuple, now: float) -> deque[float]:
        attempts = self._attempts.setdefault(key, deque())
        while attempts and attempts[0] <= now - self.window:
            attempts.popleft()
        return attempts

    def _wait(self, attempts: deque[float], now: float) -> int:
        return max(1, int(attempts[0] + self.window - now) + 1)
