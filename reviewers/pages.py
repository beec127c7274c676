"""Rendering pages: the one Jinja environment (autoescaped, StrictUndefined)
plus what every page's base template needs.

Routes from other parts (lookup, jobs, subscribers) use the same helper::

    from reviewers.pages import render
    return render(request, "web/jobs.html", {"jobs": jobs}, title="Jobs")

and their templates ``{% extends "web/base.html" %}`` and fill ``{% block
content %}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from mailbot.models import utcnow
from mailbot.templating import environment
from reviewers import csrf
from reviewers.auth import current_reviewer

# Messages shown after a redirect, chosen by key so no text from the URL is shown.
NOTICES = {
    "saved": "Draft saved.",
    "notices_on": "You will get notice mail.",
    "notices_off": "Notice mail is off.",
    "macro_saved": "Canned response saved.",
    "macro_retired": "Canned response retired.",
    "note_added": "Note added (visible to reviewers only).",
    "phi_purged": "Patient data redacted from this consultation (see the audit log for what changed).",
    "restored": "That version is the current draft again (the versions in between are kept).",
    "approved": "Approved: the answer is on its way to the asker.",
    "info_requested": "Question sent to the asker; the consultation waits for their reply.",
    "rejected": "Consultation rejected.",
    "rejected_replied": "Consultation rejected and the asker was told.",
    "regenerating": "A new draft is being prepared; refresh in a moment.",
    "claimed": "You have claimed this consultation.",
    "queue_empty": "Nothing unclaimed is waiting for review.",
    "unclaimed": "Claim released.",
    "reassigned": "Consultation reassigned.",
    "replayed": "Queued again.",
    "resolved": "Marked resolved.",
    "retrying": "Delivery will be retried.",
    "added": "Account created.",
    "disabled": "Account disabled.",
    "enabled": "Account enabled.",
    "logged_out": "You are logged out.",
}


def age(value: datetime | None, now: datetime | None = None) -> str:
    """'3 h 20 min', '2 d 4 h' -- how long something has waited."""
    if value is None:
        return ""
    now = now or utcnow()
    minutes = max(0, int((now - value).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def redacted(text: str | None) -> str:
    """``text`` with patient identifiers replaced by ``[KIND]`` (queue rows,
    page titles: places a passer-by or the browser history sees)."""
    from mailbot.drafting.redact import redact

    return redact(text).text if text else ""


def _environment():
    env = environment()
    # Filters only (no per-request globals): the environment is shared with mail templates.
    env.filters.setdefault("age", age)
    env.filters.setdefault("when", when)
    env.filters.setdefault("redacted", redacted)
    return env


def render(request: Request, name: str, context: dict[str, Any] | None = None, *,
           title: str = "", status_code: int = 200, error: str = "") -> HTMLResponse:
    """Render ``templates/<name>`` with the base template's variables."""
    values: dict[str, Any] = {
        "request": request,
        "reviewer": current_reviewer(request),
        "csrf_field": lambda: csrf.field(request),
        "csrf_token": csrf.token(request),
        "title": title,
        "error": error,
        "notice": NOTICES.get(request.query_params.get("done", ""), ""),
        "service_name": request.app.state.ctx.settings.service.name,
        "paths": request.app.state.paths,
        "now": utcnow(),
    }
    values.update(context or {})
    html = _environment().get_template(name).render(values)
    return HTMLResponse(html, status_code=status_code)
