"""Public subscriber pages, reached only through signed links in our emails
(no account): confirm, manage, unsubscribe.

- ``GET /subscribe/confirm/{token}`` shows a button; the ``POST`` (CSRF)
  confirms.  Mail scanners fetch links, so a GET never changes anything.
- ``GET /subscribe/manage/{token}`` lists the subscriber's subscriptions;
  its form (CSRF) pauses, resumes, cancels, changes what and how often, or
  unsubscribes from everything.
- ``GET /unsubscribe/{token}`` shows a button; ``POST`` to the
  same URL unsubscribes at once and answers 200 -- this is the RFC 8058
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` endpoint, which mail
  clients call without a session, so it is exempt from CSRF: the signed
  token is the authority.

An expired or forged link gets a 400/410 page saying what to do instead.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailbot.jobs import links, subscriptions
from mailbot.jobs.criteria import describe_jobs, describe_updates, parse_request
from mailbot.models.base import utcnow
from mailbot.models.jobs import Subscriber, Subscription, SubscriptionKind, SubscriptionStatus
from reviewers.auth import public
from reviewers.pages import render

router = APIRouter()
STATUS_LABELS = {
    SubscriptionStatus.PENDING: "waiting for confirmation", SubscriptionStatus.ACTIVE: "active",
    SubscriptionStatus.PAUSED: "paused", SubscriptionStatus.CANCELLED: "cancelled",
}
DONE = {
    "paused": "Paused.", "resumed": "Resumed.", "cancelled": "That subscription is cancelled.",
    "changed": "Saved: your digest now follows the new request.", "all": "You are unsubscribed from everything.",
}


def _ctx(request: Request):
    return request.app.state.ctx


def _bad_link(request: Request, exc: links.LinkError) -> Response:
    ctx = _ctx(request)
    jobs = ctx.settings.service_address(ctx.settings.service.jobs_address)
    advice = (f"Send LIST to {jobs} for a fresh link." if exc.expired
              else f"Use the link from your latest email, or send LIST to {jobs}.")
    return render(request, "web/subscriber_message.html", {"heading": str(exc).capitalize() + ".", "text": advice},
                  title="Subscriptions", status_code=410 if exc.expired else 400)


def _message(request: Request, heading: str, text: str = "", status_code: int = 200) -> Response:
    return render(request, "web/subscriber_message.html", {"heading": heading, "text": text},
                  title="Subscriptions", status_code=status_code)


# -- confirm -----------------------------------------------------------------

def _confirm_payload(request: Request, token: str) -> dict:
    return links.verify(_ctx(request).settings, "confirm", token, _ctx(request).settings.jobs.confirm_hours * 3600)


@router.get("/subscribe/confirm/{token}")
@public
def confirm_page(token: str, request: Request) -> Response:
    try:
        payload = _confirm_payload(request, token)
    except links.LinkError as exc:
        return _bad_link(request, exc)
    with _ctx(request).db.read() as session:
        sub = session.get(Subscription, payload["s"])
    if sub is None:
        return _message(request, "This subscription no longer exists.", status_code=404)
    return render(request, "web/subscriber_confirm.html", {"sub": sub, "token": token}, title="Confirm")


@router.post("/subscribe/confirm/{token}")
@public
def confirm(token: str, request: Request) -> Response:
    ctx = _ctx(request)
    try:
        payload = _confirm_payload(request, token)
    except links.LinkError as exc:
        return _bad_link(request, exc)
    with ctx.db.session() as session:
        sub = subscriptions.confirm(session, ctx.settings, payload["s"], payload["t"])
        manage = links.manage_url(ctx.settings, sub.subscriber_id) if sub else ""
    if sub is None:
        return _message(request, "This confirmation link is no longer valid.",
                        "The subscription was cancelled meanwhile. Subscribe again by email.", status_code=410)
    return RedirectResponse(manage.replace(ctx.settings.service.public_url.rstrip("/"), "", 1) + "?done=confirmed",
                            status_code=303)


# -- manage ------------------------------------------------------------------

def _subscriber_id(request: Request, token: str) -> int:
    return links.verify(_ctx(request).settings, "manage", token, links.MANAGE_SECONDS)["p"]


@router.get("/subscribe/manage/{token}")
@public
def manage_page(token: str, request: Request, done: str = "") -> Response:
    try:
        subscriber_id = _subscriber_id(request, token)
    except links.LinkError as exc:
        return _bad_link(request, exc)
    with _ctx(request).db.read() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        subs = subscriptions.live_subscriptions(session, subscriber_id) if subscriber else []
    if subscriber is None:
        return _message(request, "This address has no subscriptions.", status_code=404)
    notice = "Thank you: your subscription is confirmed." if done == "confirmed" else DONE.get(done, "")
    return render(request, "web/subscriber_manage.html", {
        "subscriber": subscriber, "subs": subs, "labels": STATUS_LABELS, "token": token, "done_notice": notice,
    }, title="Your subscriptions")


@router.post("/subscribe/manage/{token}")
@public
def manage(token: str, request: Request, action: str = Form(...), subscription_id: int | None = Form(None),
           request_text: str = Form(""), frequency: str = Form("")) -> Response:
    ctx = _ctx(request)
    try:
        subscriber_id = _subscriber_id(request, token)
    except links.LinkError as exc:
        return _bad_link(request, exc)
    which = [subscription_id] if subscription_id else None
    with ctx.db.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return _message(request, "This address has no subscriptions.", status_code=404)
        if action == "pause":
            subscriptions.pause(session, ctx.settings, subscriber.email, which)
            done = "paused"
        elif action == "resume":
            subscriptions.resume(session, ctx.settings, subscriber.email, which)
            done = "resumed"
        elif action == "cancel" and which:
            subscriptions.cancel(session, ctx.settings, subscriber_id, which)
            done = "cancelled"
        elif action == "unsubscribe_all":
            subscriptions.cancel(session, ctx.settings, subscriber_id)
            done = "all"
        elif action == "change" and which:
            sub = session.get(Subscription, subscription_id)
            if sub is None or sub.subscriber_id != subscriber_id or sub.status == SubscriptionStatus.CANCELLED:
                return _message(request, "That subscription is not yours to change.", status_code=404)
            request_text = request_text.replace("\x00", "")  # PostgreSQL refuses NUL in text (was a 500)
            parsed = parse_request(f"{sub.kind} {request_text}", default_frequency=sub.frequency)
            if frequency in ("daily", "weekly"):
                parsed.frequency = frequency
            sub.criteria, sub.request = parsed.criteria, request_text[:1000]
            sub.summary = (describe_updates(parsed.criteria) if sub.kind == SubscriptionKind.UPDATES
                           else describe_jobs(parsed.criteria, parsed.frequency))
            sub.frequency, sub.updated_at = parsed.frequency, utcnow()
            session.add(sub)
            done = "changed"
        else:
            return _message(request, "We did not understand that request.", status_code=400)
    return RedirectResponse(f"/subscribe/manage/{token}?done={done}", status_code=303)


# -- unsubscribe (RFC 8058 one-click) -----------------------------------------

def _unsubscribe_payload(request: Request, token: str) -> dict:
    return links.verify(_ctx(request).settings, "unsubscribe", token, links.UNSUBSCRIBE_SECONDS)


@router.get("/unsubscribe/{token}")
@public
def unsubscribe_page(token: str, request: Request) -> Response:
    try:
        payload = _unsubscribe_payload(request, token)
    except links.LinkError as exc:
        return _bad_link(request, exc)
    with _ctx(request).db.read() as session:
        sub = session.get(Subscription, payload["s"]) if payload.get("s") else None
        subscriber = session.get(Subscriber, payload["p"])
    return render(request, "web/subscriber_unsubscribe.html", {"sub": sub, "subscriber": subscriber, "token": token,
                                                                   "kind": payload.get("k")},
                  title="Unsubscribe")


@router.post("/unsubscribe/{token}")
@public(csrf=False)
def unsubscribe(token: str, request: Request) -> Response:
    ctx = _ctx(request)
    try:
        payload = _unsubscribe_payload(request, token)
    except links.LinkError as exc:
        return _bad_link(request, exc)
    which = [payload["s"]] if payload.get("s") else None
    kind = payload.get("k")      # a job digest's link: every job digest, code updates stay
    with ctx.db.session() as session:
        subscriptions.cancel(session, ctx.settings, payload["p"], which, kind=kind)
        manage = links.manage_url(ctx.settings, payload["p"])
    heading = ("That digest is cancelled." if which else
               "You are unsubscribed from job digests." if kind == SubscriptionKind.JOBS else
               "You are unsubscribed.")
    return render(request, "web/subscriber_message.html", {
        "heading": heading,
        "text": "No more of these emails will be sent.", "manage_url": manage,
    }, title="Unsubscribed")
