"""Signed links for subscribers: confirm, manage, one-click unsubscribe.

Tokens are itsdangerous ``URLSafeTimedSerializer`` signatures; each purpose
has its own salt, so a manage token cannot confirm and an unsubscribe token
cannot open the manage page.  Confirmation links expire after
``jobs.confirm_hours``; manage links after 30 days (a fresh one comes with
every email); unsubscribe links after a year, because a List-Unsubscribe
header must keep working in old digests.

The key is ``MAILBOT_JOBS__LINK_SECRET``, else ``MAILBOT_WEB__SESSION_SECRET``;
with neither (the embedded default) a random key is created once in
``var/secrets/link-secret`` (mode 0600) so links survive restarts.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer

from mailbot.config import Settings

MANAGE_SECONDS = 30 * 24 * 3600
UNSUBSCRIBE_SECONDS = 365 * 24 * 3600


class LinkError(Exception):
    """A link that is forged, for another purpose, or expired (``expired``)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _secret(settings: Settings) -> str:
    for value in (settings.jobs.link_secret, settings.web.session_secret):
        if value is not None and value.get_secret_value():
            return value.get_secret_value()
    return _file_secret(str(settings.service.var_dir))


@lru_cache(maxsize=8)
def _file_secret(var_dir: str) -> str:
    path = Path(var_dir) / "secrets" / "link-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first; use theirs
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return _cached_serializer(_secret(settings), purpose)


class _LinkSerializer(URLSafeTimedSerializer):
    """``URLSafeTimedSerializer`` for payloads of a few ids, made cheap
    enough for a digest run, which signs three links per email: the payload
    is not offered to zlib (a few dozen bytes never get shorter, and the
    attempt cost 40 of a token's 100 us), and the signer is made once.
    The tokens are the same format; ``loads`` reads them as ever."""

    SHORT = 120

    def dump_payload(self, obj: Any) -> bytes:
        json = Serializer.dump_payload(self, obj)
        if len(json) > self.SHORT:
            return super().dump_payload(obj)
        return base64_encode(json)

    def make_signer(self, salt=None):
        if salt is not None and salt != self.salt:
            return super().make_signer(salt)
        signer = self.__dict__.get("_signer")
        if signer is None:
            signer = self._signer = super().make_signer(salt)
        return signer


@lru_cache(maxsize=32)
def _cached_serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    # Building one derives keys; a digest run signs three links per email.
    return _LinkSerializer(secret, salt=f"mailbot.jobs.{purpose}")


def sign(settings: Settings, purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(settings, purpose).dumps(payload)


def verify(settings: Settings, purpose: str, token: str, max_age: int) -> dict[str, Any]:
    """The payload of a valid token, or :class:`LinkError`."""
    try:
        return _serializer(settings, purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise LinkError("this link has expired", expired=True) from None
    except BadSignature:
        raise LinkError("this link is not valid") from None


def confirm_url(settings: Settings, subscription_id: int, token: str) -> str:
    signed = sign(settings, "confirm", {"s": subscription_id, "t": token})
    return f"{settings.service.public_url.rstrip('/')}/subscribe/confirm/{signed}"


def manage_url(settings: Settings, subscriber_id: int) -> str:
    return f"{settings.service.public_url.rstrip('/')}/subscribe/manage/{sign(settings, 'manage', {'p': subscriber_id})}"


def unsubscribe_token(settings: Settings, subscriber_id: int, subscription_id: int | None = None,
                      kind: str | None = None) -> str:
    """``subscription_id``: that one subscription; else ``kind`` (``jobs``):
    every subscription of that kind (a job digest unsubscribes from job
    digests, not from code updates); else everything."""
    payload: dict = {"p": subscriber_id, "s": subscription_id}
    if kind and subscription_id is None:
        payload["k"] = kind
    return sign(settings, "unsubscribe", payload)


def unsubscribe_url(settings: Settings, subscriber_id: int, subscription_id: int | None = None,
                    kind: str | None = None) -> str:
    return unsubscribe_url_of(settings, unsubscribe_token(settings, subscriber_id, subscription_id, kind))


def unsubscribe_url_of(settings: Settings, token: str) -> str:
    """The one-click page of an :func:`unsubscribe_token`."""
    return f"{settings.service.public_url.rstrip('/')}/unsubscribe/{token}"
