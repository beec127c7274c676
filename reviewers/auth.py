"""Who may see what.

Every route requires a logged-in, active reviewer, except routes explicitly
marked :func:`public` (login, ``/healthz``, ``/metrics`` with its own check,
the public subscriber endpoints).  This is enforced by :func:`gate`, a
dependency of the whole app, so a new route is protected by default.
Unauthenticated page requests (GET/HEAD from a browser) are redirected to
the login page; anything else -- a POST, a script asking for JSON -- gets 401.  :func:`require_reviewer` and :func:`require_admin`
give routes the account.

Logins are rate limited per client address and email (``web.login_attempts_
per_minute``).  The limiter lives in the process: with several web processes
behind a balancer each enforces its own limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Depends, Request

from mailbot.models import Reviewer, ReviewerRole
from reviewers import csrf
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
    rid = session_of(request).reviewer_id
    if rid is not None:
        with request.app.state.ctx.db.read() as session:
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
    """At most ``per_minute`` attempts per (client address, email) in any
    sliding minute.  Successful logins count too: a guessing script gains
    nothing from interleaving a known password."""

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._attempts: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, email: str, now: float | None = None) -> bool:
        """Record an attempt; False when it is over the limit."""
        now = time.monotonic() if now is None else now
        key = (client, email.strip().lower())
        with self._lock:
            if len(self._attempts) > 10_000:  # forget idle keys so memory stays bounded
                self._attempts = {k: v for k, v in self._attempts.items() if v and v[-1] > now - self.window}
            attempts = self._attempts.setdefault(key, deque())
            while attempts and attempts[0] <= now - self.window:
                attempts.popleft()
            if len(attempts) >= self.per_minute:
                return False
            attempts.append(now)
            return True

    def retry_after(self, client: str, email: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        attempts = self._attempts.get((client, email.strip().lower()))
        if not attempts:
            return 0
        return max(1, int(attempts[0] + self.window - now) + 1)
