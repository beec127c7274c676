"""Login and logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailbot.services import accounts
from reviewers.auth import current_reviewer, public
from reviewers.pages import render
from reviewers import sessions
from reviewers.sessions import session_of

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only local paths: ``next`` must not turn the login page into an open redirect."""
    if not target:
        return "/queue"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target


@router.get("/login")
@public
def login_page(request: Request, next: str = "") -> Response:
    if current_reviewer(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "web/login.html", {"next": _safe_next(next), "email": ""}, title="Log in")


@router.post("/login")
@public
def login(request: Request, email: str = Form(""), password: str = Form(""), next: str = Form("")) -> Response:
    # The peer address; uvicorn replaces it with X-Forwarded-For only for
    # web.trusted_proxies (serve's config), so a client cannot rotate it.
    client = request.client.host if request.client else "?"
    limiter = request.app.state.login_limiter
    wait = limiter.check(client, email, known=_known_browser(request, email))
    if wait:
        return render(request, "web/login.html", {"next": _safe_next(next), "email": email},
                      title="Log in", status_code=429,
                      error=f"Too many attempts. Wait {wait} seconds and try again.")
    with request.app.state.ctx.db.session() as session:
        reviewer = accounts.authenticate(session, email, password)
        reviewer_id = reviewer.id if reviewer else None
    if reviewer_id is None:
        return render(request, "web/login.html", {"next": _safe_next(next), "email": email},
                      title="Log in", status_code=401, error="Email or password is not right, or the account is disabled.")
    session_of(request).login(reviewer_id, sessions.start(request.app.state.ctx.db, reviewer_id))
    request.state.reviewer = reviewer
    return RedirectResponse(_safe_next(next), status_code=303)


def _known_browser(request: Request, email: str) -> bool:
    """Whether this browser's cookie says ``email``'s account logged in here before."""
    known = session_of(request).known_reviewers
    if not known:
        return False
    with request.app.state.ctx.db.read() as session:
        reviewer = accounts.find(session, email)
    return reviewer is not None and reviewer.id in known


@router.post("/logout")
def logout(request: Request) -> Response:
    cookie = session_of(request)
    sessions.end(request.app.state.ctx.db, cookie.session_token)   # server-side: a copied cookie dies too
    cookie.logout()
    return RedirectResponse("/login?done=logged_out", status_code=303)
