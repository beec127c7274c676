"""CSRF protection: one token per session, required on every unsafe request.

Forms carry it in a hidden ``csrf_token`` field (templates call
``{{ csrf_field() }}``); scripts send it as the ``X-CSRF-Token`` header.  The
gate in :mod:`reviewers.auth` calls :func:`verify` for every POST/PUT/PATCH/
DELETE, including the login form (so nobody can log a victim into an
attacker's account).  A route that must accept posts from outside -- RFC 8058
one-click unsubscribe from a mail client -- opts out with
``@public(csrf=False)``.
"""

from __future__ import annotations

import hmac

from markupsafe import Markup, escape
from starlette.requests import Request

from reviewers.sessions import session_of

FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfError(Exception):
    """The request carried no valid CSRF token (answered with a 403 page)."""


def token(request: Request) -> str:
    """The session's token (created on first use)."""
    return session_of(request).csrf_token


def field(request: Request) -> Markup:
    """The hidden form field, for templates."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(token(request))}">')


async def verify(request: Request) -> None:
    """Raise :class:`CsrfError` unless the request carries the session's token."""
    expected = session_of(request).data.get("csrf")
    supplied = request.headers.get(HEADER)
    if supplied is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached by Starlette; the route reads the same form
            value = form.get(FIELD)
            supplied = value if isinstance(value, str) else None
    if not expected or not supplied or not hmac.compare_digest(str(expected), supplied):
        raise CsrfError()
