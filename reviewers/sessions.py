"""Signed-cookie sessions.

The cookie holds only ``{"rid": reviewer id or None, "csrf": token}``, signed
and timestamped with itsdangerous; nothing else about the reviewer is trusted
from it -- the account is reloaded on every request, so disabling a reviewer
ends their sessions at once.  The signature's timestamp is when the session
was issued (it is re-signed only at login and logout), so a session lasts
``web.session_hours`` from login, however busy it is.

The cookie is HttpOnly and SameSite=Lax always, and Secure when
``web.secure_cookies`` says so ("auto": when the request arrived over HTTPS).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailbot.config import ConfigError, Settings

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

    def login(self, reviewer_id: int) -> None:
        # A new token at login: a token seen before authentication is worthless after.
        self.data = {"rid": reviewer_id, "csrf": secrets.token_urlsafe(32)}
        self.dirty = True

    def logout(self) -> None:
        self.data = {"csrf": secrets.token_urlsafe(32)}
        self.dirty = True


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
