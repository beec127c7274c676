"""The signed-in reviewer's own settings: notification mail on or off."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import update

from mailbot.models import Reviewer
from reviewers.auth import require_reviewer
from reviewers.pages import render

router = APIRouter()


@router.get("/account")
def account(request: Request, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    return render(request, "web/account.html", {"me": reviewer}, title="Your account")


@router.post("/account/notifications")
def notifications(request: Request, notify: str = Form(""), reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    on = notify in ("1", "on", "true")
    with request.app.state.ctx.db.session() as session:
        session.exec(update(Reviewer).where(Reviewer.id == reviewer.id).values(notify_by_mail=on))
    return RedirectResponse("/account?done=" + ("notices_on" if on else "notices_off"), status_code=303)
