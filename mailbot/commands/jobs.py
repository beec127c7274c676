"""Job board mail commands, sent to ``jobs@``:

- ``SUBSCRIBE [JOBS|UPDATES] <what>`` -- e.g. ``SUBSCRIBE JOBS remote CPC weekly``,
  ``SUBSCRIBE remote CPC jobs in Texas, daily``, ``SUBSCRIBE UPDATES E08-E13``;
  answered with a confirmation request (double opt-in);
- ``CONFIRM <token>`` -- what a reply to that request carries in its subject;
- ``PAUSE`` / ``RESUME`` / ``UNSUBSCRIBE`` ``[S-12 ...]`` -- all subscriptions,
  or the ones named; ``UNSUBSCRIBE <signed token>`` is the List-Unsubscribe mailto;
- ``LIST`` -- what this address is subscribed to;
- ``POST JOB`` with ``Field: value`` lines -- from an allow-listed employer
  address (``jobs.employer_senders``) it becomes a pending posting.

The address acted on is the one the reply goes to (Reply-To, else From), so a
confirmation can only ever reach the address being subscribed.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from mailbot.commands import Command, Reply, handler
from mailbot.commands.arguments import CommandError
from mailbot.context import Context
from mailbot.jobs import board, fields, links, subscriptions
from mailbot.jobs.criteria import parse_request
from mailbot.jobs.importers import JobInput, from_record
from mailbot.models.jobs import Job, JobStatus, Subscription, SubscriptionStatus
from mailbot.models.mail import InboundMessage

EXAMPLES = [
    "SUBSCRIBE JOBS remote CPC weekly",
    "SUBSCRIBE remote CPC jobs in Texas, daily",
    "SUBSCRIBE UPDATES E08-E13",
    "LIST",
    "UNSUBSCRIBE",
]
STATUS_LABELS = {
    SubscriptionStatus.PENDING: "waiting for confirmation",
    SubscriptionStatus.ACTIVE: "active",
    SubscriptionStatus.PAUSED: "paused",
    SubscriptionStatus.CANCELLED: "cancelled",
}
_REF = re.compile(r"\bS-?(\d+)\b", re.I)


def address_of(inbound: InboundMessage) -> str:
    return (inbound.reply_to or inbound.from_addr).strip().lower()


def _common(ctx: Context) -> dict[str, Any]:
    settings = ctx.settings
    return {"service_name": settings.service.name,
            "jobs_address": settings.service_address(settings.service.jobs_address)}


def _view(sub: Subscription) -> dict[str, Any]:
    return {"reference": sub.reference, "summary": sub.summary, "kind": sub.kind, "frequency": sub.frequency,
            "status": sub.status, "status_label": STATUS_LABELS.get(sub.status, sub.status)}


def status_reply(ctx: Context, session: Session, email: str, headline: str, message: str) -> Reply:
    subscriber = subscriptions.subscriber_for(session, email)
    subs = subscriptions.live_subscriptions(session, subscriber.id) if subscriber else []
    return Reply("subscription-status", {
        **_common(ctx), "headline": headline, "message": message, "subscriptions": [_view(s) for s in subs],
        "manage_url": links.manage_url(ctx.settings, subscriber.id) if subscriber and subs else "",
    }, kind="subscription")


@handler("SUBSCRIBE")
def subscribe(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    text = command.argument.strip()
    request = parse_request(text)
    criteria_given = any(request.criteria.values())
    named = re.match(r"^\s*(jobs|updates|code)", text, re.I) is not None
    if not (criteria_given or named) and command.found_in == "recipient":
        # Mail to jobs@ without the verb: the subject said nothing usable, try the first line.
        first = next((line.strip() for line in (command.body or "").splitlines() if line.strip()), "")
        if first and first != text:
            text, request = first, parse_request(first)
            criteria_given = any(request.criteria.values())
    if not criteria_given and not named:
        raise CommandError(
            "we could not tell what you want to subscribe to" + (f" from \"{text[:80]}\"" if text else ""),
            hint="Name JOBS (with what, where and how often) or UPDATES (with code ranges).",
            examples=EXAMPLES[:3])
    try:
        sub = subscriptions.subscribe(session, address_of(inbound), request, raw_request=text)
    except subscriptions.SubscriptionError as exc:
        raise CommandError(str(exc), examples=["LIST", "UNSUBSCRIBE S-12"]) from None
    if sub.status != SubscriptionStatus.PENDING:
        return status_reply(ctx, session, address_of(inbound), f"Already subscribed: {sub.summary}",
                            f"You already have this subscription ({sub.reference}); nothing changed.")
    return Reply("subscribe-confirm", {
        **_common(ctx), "summary": sub.summary, "reference": sub.reference, "token": sub.confirm_token,
        "confirm_url": links.confirm_url(ctx.settings, sub.id, sub.confirm_token),
        "confirm_hours": ctx.settings.jobs.confirm_hours, "ignored": request.ignored,
    }, kind="subscribe-confirm")


@handler("CONFIRM")
def confirm(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    token = (command.argument.split() or [""])[0].strip(".,;:")
    sub = subscriptions.confirm_by_reply(session, ctx.settings, address_of(inbound), token)
    if sub is None:
        raise CommandError(
            "that confirmation code is unknown, expired, or was sent to another address",
            hint="Reply to the confirmation email itself, from the address it was sent to, "
                 "or subscribe again to get a new one.",
            examples=EXAMPLES[:2])
    return status_reply(ctx, session, address_of(inbound), f"Subscription confirmed: {sub.summary}",
                        f"Thank you: {sub.reference} ({sub.summary}) is active.")


def _which(argument: str) -> list[int] | None:
    ids = [int(m) for m in _REF.findall(argument)]
    return ids or None


@handler("PAUSE")
def pause(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    outcome = subscriptions.pause(session, ctx.settings, address_of(inbound), _which(command.argument))
    return status_reply(ctx, session, address_of(inbound), "Digests paused" if outcome.changed else "Nothing paused",
                        outcome.message + (" Send RESUME to start them again." if outcome.changed else ""))


@handler("RESUME")
def resume(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    outcome = subscriptions.resume(session, ctx.settings, address_of(inbound), _which(command.argument))
    return status_reply(ctx, session, address_of(inbound), "Digests resumed" if outcome.changed else "Nothing resumed",
                        outcome.message)


@handler("UNSUBSCRIBE")
def unsubscribe(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    email = address_of(inbound)
    argument = command.argument.strip()
    token = (argument.split() or [""])[0]
    subscriber_id, which, kind = None, _which(argument), None
    if token and "." in token and not _REF.fullmatch(token):
        # The List-Unsubscribe mailto carries a signed token: honour it even
        # from another address (forwarding, aliases), as RFC 2369 intends.
        try:
            payload = links.verify(ctx.settings, "unsubscribe", token, links.UNSUBSCRIBE_SECONDS)
        except links.LinkError:
            payload = None
        if payload:
            subscriber_id = payload["p"]
            which = [payload["s"]] if payload.get("s") else None
            kind = payload.get("k")          # a job digest's: all job digests
    if subscriber_id is None:
        subscriber = subscriptions.subscriber_for(session, email)
        if subscriber is None:
            return status_reply(ctx, session, email, "No subscriptions", "This address has no subscriptions.")
        subscriber_id = subscriber.id
    outcome = subscriptions.cancel(session, ctx.settings, subscriber_id, which, kind=kind)
    return status_reply(ctx, session, email, "Unsubscribed" if outcome.changed else "Nothing to unsubscribe",
                        outcome.message)


@handler("LIST")
def list_subscriptions(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    return status_reply(ctx, session, address_of(inbound), "Your job board subscriptions",
                        "Here is what this address is subscribed to.")


# "Field: value" lines of a POST JOB email, mapped to importer record keys.
_POST_FIELDS = {
    "title": "title", "job title": "title", "position": "title", "employer": "employer", "company": "employer",
    "location": "location", "city": "city", "state": "state", "work mode": "work_mode", "remote": "work_mode",
    "type": "work_mode", "credentials": "credentials", "certifications": "credentials",
    "specialty": "specialty", "experience": "experience", "salary": "salary", "pay": "salary",
    "apply": "apply_url", "apply url": "apply_url", "url": "apply_url", "link": "apply_url",
    "apply email": "apply_email", "email": "apply_email", "description": "description",
    "expires": "expires_at", "expiry": "expires_at", "closes": "expires_at",
}


def employer_allowed(ctx: Context, address: str) -> bool:
    address = address.lower()
    for entry in ctx.settings.jobs.employer_senders:
        entry = entry.strip().lower()
        if entry and (address == entry or (entry.startswith("@") and address.endswith(entry))
                      or ("@" not in entry and address.endswith("@" + entry))):
            return True
    return False


def parse_post(text: str) -> dict[str, str]:
    record: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z][A-Za-z ]{1,20}?)\s*:\s*(.*)$", line)
        if m and m.group(1).strip().lower() in _POST_FIELDS:
            current = _POST_FIELDS[m.group(1).strip().lower()]
            record[current] = m.group(2).strip()
        elif current == "description" and line.strip():
            record["description"] += "\n" + line.strip()
    if "apply_url" in record and "@" in record["apply_url"] and "://" not in record["apply_url"]:
        record["apply_email"] = record.pop("apply_url").removeprefix("mailto:")
    return record


@handler("POST JOB")
def post_job(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    context = {**_common(ctx), "title": "", "employer": "", "reference": "", "problems": [], "merged": False}
    if not employer_allowed(ctx, inbound.from_addr):
        return Reply("job-posted", {**context, "status": "refused"}, kind="job-posted")
    record = parse_post(command.body or inbound.text)
    sender = inbound.from_addr.lower()
    try:
        data: JobInput = from_record(record, source="email", source_ref=inbound.message_id[:1000])
        # An employer may update its own posting by sending it again, never
        # someone else's (same apply link, or same employer/title/place).
        probe = Job(title=data.title, employer=data.employer, city=data.city, state=data.state,
                    work_mode=data.work_mode, apply_url=data.apply_url)
        duplicate = board.find_duplicate(session, fields.url_key(probe.apply_url), fields.identity_key(
            probe.employer, probe.title, probe.city, probe.state, probe.work_mode))
        if duplicate is not None and duplicate.submitted_by != sender:
            raise board.JobError(f"this posting is already on the board as {duplicate.reference}; "
                                 "ask the administrators to change it")
        job, created = board.upsert(session, data, status=JobStatus.PENDING, submitted_by=sender)
    except (ValueError, board.JobError) as exc:
        return Reply("job-posted", {**context, "status": "invalid", "problems": [str(exc)]}, kind="job-posted")
    return Reply("job-posted", {**context, "status": "pending", "title": job.title, "employer": job.employer,
                                "reference": job.reference, "merged": not created}, kind="job-posted")
