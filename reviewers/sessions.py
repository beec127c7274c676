"""Signed-cookie sessions, each backed by a server-side record.

The cookie holds only ``{"rid": reviewer id, "sid": session token, "csrf":
token}``, signed and timestamped with itsdangerous; nothing else about the
reviewer is trusted from it -- the account is reloaded on every request, so
disabling a reviewer ends their sessions at once.  The signature's timestamp
is when the session was issued (it is re-signed only at login and logout), so
a session lasts ``web.session_hours`` from login, however busy it is.

A login also writes a ``reviewer_session`` row (keyed by the SHA-256 of the
token, see :func:`start`); the cookie opens pages only while that row is
live.  Logout ends the row, so a cookie captured before logout -- copied from
a shared machine, a proxy log -- opens nothing afterwards, although its
signature is still valid (issue 17, point 12).  A ``known`` list of
reviewer ids that logged in from this browser survives logout: the login
limiter lets the right password through from a known browser even while the
account is being attacked from elsewhere.

The cookie is HttpOnly and SameSite=Lax always, and Secure when
``web.secure_cookies`` says so ("auto": when the request arrived over HTTPS).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailbot.config import ConfigError, Settings
from mailbot.db import Database
from mailbot.models import ReviewerSession, utcnow

log = logging.getLogger(__name__)

COOKIE_NAME = "mailbot_session"


def session_secret(settings: Settings) -> str:
    """``web.session_secret`` from the environment; embedded mode may run
    without one (sessions then end when the process restarts)."""
    if settings.web.session_secret is not None and settings.web.session_secret.get_secret_value():
        secret = settings.web.session_secret.get_secret_value()
        if len(secret) < 32:
            raise ConfigError("web.session_secret is shorter than 32 characters; set MAILBOT_WEB__SESSION_SECRET "
                              "to a long random value, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        return secret
    if not settings.embedded:
        raise ConfigError("web.session_secret is not set; with several web processes every one needs the same "
                          "MAILBOT_WEB__SESSION_SECRET (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)")
    log.warning("web.session_secret is not set: using a temporary key, so reviewers must log in again after a "
                "restart; set MAILBOT_WEB__SESSION_SECRET to keep sessions")
    return secrets.token_urlsafe(48)


@dataclass
class Session:
    """The decoded cookie; ``dirty`` makes the middleware write it back."""

    data: dict[str, Any] = field(default_factory=dict)
    dirty: bool = False

    @property
    def reviewer_id(self) -> int | None:
        value = self.data.get("rid")
        return value if isinstance(value, int) else None

    @property
    def csrf_token(self) -> str:
        token = self.data.get("csrf")
        if not isinstance(token, str) or len(token) < 20:
            token = secrets.token_urlsafe(32)
            self.data["csrf"] = token
            self.dirty = True
        return token

    @property
    def session_token(self) -> str:
        value = self.data.get("sid")
        return value if isinstance(value, str) else ""

    @property
    def known_reviewers(self) -> list[int]:
        """Reviewers who logged in from this browser before (see module doc)."""
        value = self.data.get("known")
        return [v for v in value if isinstance(v, int)][-MAX_KNOWN:] if isinstance(value, list) else []

    def login(self, reviewer_id: int, token: str) -> None:
        # A new token at login: a token seen before authentication is worthless after.
        known = [r for r in self.known_reviewers if r != reviewer_id] + [reviewer_id]
        self.data = {"rid": reviewer_id, "sid": token, "csrf": secrets.token_urlsafe(32), "known": known[-MAX_KNOWN:]}
        self.dirty = True

    def logout(self) -> None:
        self.data = {"csrf": secrets.token_urlsafe(32), "known": self.known_reviewers}
        self.dirty = True


# -- the server-side record ------------------------------------------------------

MAX_KNOWN = 5
RETAIN_DAYS = 30   # > web.session_hours in any sane setting; rows kept a while for the record


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(db: Database, reviewer_id: int) -> str:
    """Record a new session for ``reviewer_id``; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    with db.session() as session:
        # Sessions older than any session may live are dead either way: forget them.
        session.exec(delete(ReviewerSession).where(ReviewerSession.created_at < utcnow() - timedelta(days=RETAIN_DAYS)))
        session.add(ReviewerSession(id=_key(token), reviewer_id=reviewer_id, created_at=utcnow()))
    return token


def live(db: Database, token: str, reviewer_id: int, max_age_seconds: int) -> bool:
    """Whether ``token`` names a session of ``reviewer_id`` that has not ended."""
    if not token:
        return False
    with db.read() as session:
        row = session.get(ReviewerSession, _key(token))
    return (row is not None and row.reviewer_id == reviewer_id and row.ended_at is None
            and row.created_at > utcnow() - timedelta(seconds=max_age_seconds))


def end(db: Database, token: str) -> None:
    """End the session ``token`` names (logout); idempotent."""
    if not token:
        return
    with db.session() as session:
        session.exec(update(ReviewerSession).where(ReviewerSession.id == _key(token),
                                                   ReviewerSession.ended_at.is_(None))
                     .values(ended_at=utcnow()))


class SessionMiddleware:
    """Decode the cookie into ``scope["mailbot.session"]``; write it back when changed."""

    def __init__(self, app: ASGIApp, *, secret: str, max_age: int, secure: str) -> None:
        self.app = app
        self.serializer = URLSafeTimedSerializer(secret, salt="mailbot.session")
        self.max_age = max_age
        self.secure = secure

    def _load(self, raw: str | None) -> Session:
        if not raw:
            return Session()
        try:
            data = self.serializer.loads(raw, max_age=self.max_age)
        except BadSignature:  # also covers expiry (SignatureExpired)
            return Session(dirty=False)
        return Session(data=data if isinstance(data, dict) else {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        session = self._load(connection.cookies.get(COOKIE_NAME))
        scope["mailbot.session"] = session
        secure = self.secure == "always" or (self.secure == "auto" and connection.url.scheme == "https")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and session.dirty:
                value = self.serializer.dumps(session.data)
                cookie = (f"{COOKIE_NAME}={value}; Path=/; Max-Age={self.max_age}; HttpOnly; SameSite=Lax"
                          + ("; Secure" if secure else ""))
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def session_of(connection: HTTPConnection) -> Session:
    return connection.scope["mailbot.session"]
