"""Subscribers and their subscriptions: subscribe, confirm, pause, resume,
unsubscribe, list, and bounces.

Double opt-in: :func:`subscribe` creates a subscription in
``pending_confirmation`` with a random token; it becomes active only through
:func:`confirm` (the signed link, or a reply whose subject carries
``CONFIRM <token>``).  Every state move is a conditional update, so a link
clicked twice or a reply processed twice changes nothing the second time.
Unsubscribing takes effect at once: digest building re-checks the status in
the same transaction that would queue the email, and digests already queued
but not yet delivered are withdrawn.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, func, select

from mailbot.config import Settings
from mailbot.jobs.criteria import Request
from mailbot.jobs.schedule import next_slot
from mailbot.models.base import utcnow
from mailbot.models.jobs import (
    DigestRun,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionKind,
    SubscriptionStatus,
)
from mailbot.models.mail import BounceEvent, OutboundMessage, OutboundState

# A subscriber may hold this many live subscriptions; more is almost always a
# script or a mistake, and each one is an email per period.
MAX_SUBSCRIPTIONS = 10
LIVE = (SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED)


class SubscriptionError(Exception):
    """A request we say no to, worded for the subscriber."""


@dataclass
class Outcome:
    """What a change did, for the reply: which subscriptions, and a sentence."""

    subscriptions: list[Subscription]
    message: str
    changed: bool = True


def subscriber_for(session: Session, email: str, *, create: bool = False) -> Subscriber | None:
    email = email.strip().lower()
    found = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    if found is None and create:
        found = Subscriber(email=email, status=SubscriberStatus.ACTIVE)
        session.add(found)
        session.flush()
    return found


def live_subscriptions(session: Session, subscriber_id: int) -> list[Subscription]:
    return list(session.exec(
        select(Subscription).where(Subscription.subscriber_id == subscriber_id, Subscription.status.in_(LIVE))
        .order_by(Subscription.id)
    ).all())


def subscribe(session: Session, email: str, request: Request, raw_request: str = "",
              now: datetime | None = None) -> Subscription:
    """A new pending subscription (or the same pending/active one again)."""
    now = now or utcnow()
    subscriber = subscriber_for(session, email, create=True)
    live = live_subscriptions(session, subscriber.id)
    for sub in live:
        if sub.kind == request.kind and sub.criteria == request.criteria and sub.frequency == request.frequency:
            return sub
    if len(live) >= MAX_SUBSCRIPTIONS:
        raise SubscriptionError(
            f"you already have {len(live)} subscriptions, the most one address may hold; "
            "UNSUBSCRIBE from one (or PAUSE it) first")
    sub = Subscription(
        subscriber_id=subscriber.id, kind=request.kind, criteria=request.criteria, summary=request.summary[:1000],
        request=raw_request[:1000], frequency=request.frequency, status=SubscriptionStatus.PENDING,
        confirm_token=secrets.token_hex(8), created_at=now, updated_at=now,
    )
    session.add(sub)
    session.flush()
    return sub


def confirm(session: Session, settings: Settings, subscription_id: int, token: str,
            now: datetime | None = None) -> Subscription | None:
    """Activate a pending subscription whose token matches; returns it (also
    when it was already active: a second click is not an error), or ``None``."""
    now = now or utcnow()
    sub = session.get(Subscription, subscription_id)
    if sub is None or not token or not secrets.compare_digest(sub.confirm_token, token):
        return None
    if sub.status == SubscriptionStatus.PENDING:
        next_due = next_slot(now, sub.frequency, settings) if sub.kind == SubscriptionKind.JOBS else None
        moved = session.exec(
            update(Subscription).where(Subscription.id == sub.id, Subscription.status == SubscriptionStatus.PENDING)
            .values(status=SubscriptionStatus.ACTIVE, confirmed_at=now, updated_at=now, next_due_at=next_due)
        ).rowcount
        if moved == 1:
            subscriber = session.get(Subscriber, sub.subscriber_id)
            # Confirming proves the address receives mail: lift a suspension.
            subscriber.status = SubscriberStatus.ACTIVE
            subscriber.bounce_count = 0
            subscriber.confirmed_at = now            # bounces count from the latest confirmation
            subscriber.updated_at = now
            session.add(subscriber)
        session.refresh(sub)
    return sub if sub.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED) else None


def confirm_by_reply(session: Session, settings: Settings, email: str, token: str,
                     now: datetime | None = None) -> Subscription | None:
    """Reply-to-confirm: the token from ``CONFIRM <token>``, from the subscriber's
    own address, within ``jobs.confirm_hours``."""
    now = now or utcnow()
    subscriber = subscriber_for(session, email)
    if subscriber is None or not token:
        return None
    sub = session.exec(
        select(Subscription).where(Subscription.subscriber_id == subscriber.id,
                                   Subscription.confirm_token == token.strip().lower())
    ).first()
    if sub is None:
        return None
    if sub.status == SubscriptionStatus.PENDING and sub.created_at < now - timedelta(hours=settings.jobs.confirm_hours):
        return None
    return confirm(session, settings, sub.id, sub.confirm_token, now)


def _select(session: Session, subscriber: Subscriber, which: list[int] | None) -> list[Subscription]:
    subs = live_subscriptions(session, subscriber.id)
    if which:
        subs = [s for s in subs if s.id in which]
    return subs


def _set_status(session: Session, subs: list[Subscription], sources: tuple[str, ...], target: str,
                settings: Settings, now: datetime) -> list[Subscription]:
    moved = []
    for sub in subs:
        values = dict(status=target, updated_at=now)
        if target == SubscriptionStatus.ACTIVE and sub.kind == SubscriptionKind.JOBS:
            values["next_due_at"] = next_slot(now, sub.frequency, settings)
        rows = session.exec(
            update(Subscription).where(Subscription.id == sub.id, Subscription.status.in_(sources)).values(**values)
        ).rowcount
        if rows == 1:
            session.refresh(sub)
            moved.append(sub)
    return moved


def pause(session: Session, settings: Settings, email: str, which: list[int] | None = None,
          now: datetime | None = None) -> Outcome:
    subscriber = subscriber_for(session, email)
    if subscriber is None:
        return Outcome([], "This address has no subscriptions.", changed=False)
    moved = _set_status(session, _select(session, subscriber, which), (SubscriptionStatus.ACTIVE,),
                        SubscriptionStatus.PAUSED, settings, now or utcnow())
    return Outcome(moved, f"Paused {len(moved)} subscription(s)." if moved else "Nothing to pause.", bool(moved))


def resume(session: Session, settings: Settings, email: str, which: list[int] | None = None,
           now: datetime | None = None) -> Outcome:
    subscriber = subscriber_for(session, email)
    if subscriber is None:
        return Outcome([], "This address has no subscriptions.", changed=False)
    moved = _set_status(session, _select(session, subscriber, which), (SubscriptionStatus.PAUSED,),
                        SubscriptionStatus.ACTIVE, settings, now or utcnow())
    return Outcome(moved, f"Resumed {len(moved)} subscription(s)." if moved else "Nothing to resume.", bool(moved))


def cancel(session: Session, settings: Settings, subscriber_id: int, which: list[int] | None = None,
           now: datetime | None = None, kind: str | None = None) -> Outcome:
    """Unsubscribe: the chosen subscriptions; or, with ``kind``, every
    subscription of that kind (the List-Unsubscribe of a job digest: all job
    digests, code updates stay); or all of them (and the address).  The
    address is marked unsubscribed when nothing live is left."""
    now = now or utcnow()
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return Outcome([], "This address has no subscriptions.", changed=False)
    chosen = _select(session, subscriber, which)
    if kind and not which:
        chosen = [sub for sub in chosen if sub.kind == kind]
    moved = _set_status(session, chosen, LIVE, SubscriptionStatus.CANCELLED, settings, now)
    withdraw_queued(session, subscriber_id, [sub.id for sub in moved])
    everything = not which and (not kind or not live_subscriptions(session, subscriber_id))
    if everything:
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.updated_at = now
        session.add(subscriber)
    if not moved and which:
        return Outcome([], "None of those subscriptions is active.", changed=False)
    if kind and not which:
        label = "job digests" if kind == SubscriptionKind.JOBS else "code-update digests"
        return Outcome(moved, f"You are unsubscribed from all {label}."
                       + ("" if everything else " Your other subscriptions continue."), changed=bool(moved) or everything)
    return Outcome(moved, "You are unsubscribed from everything." if not which
                   else f"Cancelled {len(moved)} subscription(s).")


def withdraw_queued(session: Session, subscriber_id: int, subscription_ids: list[int]) -> int:
    """Digests queued but not yet delivered whose subscriptions are all
    cancelled now (``subscription_ids`` were just cancelled) are not sent: an
    unsubscribe is honoured at once, even mid-run.  A job digest with a
    section for a subscription that is still live goes out (it also carries
    that subscription's jobs).  Withdrawn emails are marked failed with the
    reason, where the outbox page shows them."""
    if not subscription_ids:
        return 0
    runs = session.exec(
        select(DigestRun.outbound_id, DigestRun.subscription_id, DigestRun.sections)
        .join(OutboundMessage, OutboundMessage.id == DigestRun.outbound_id)
        .where(DigestRun.subscriber_id == subscriber_id, OutboundMessage.state == OutboundState.PENDING)
    ).all()
    involved = {outbound_id: ({subscription_id} if subscription_id else {s["s"] for s in sections or []})
                for outbound_id, subscription_id, sections in runs}
    cancelled = set(subscription_ids)
    mentioned = set().union(*involved.values()) if involved else set()
    if mentioned - cancelled:
        cancelled |= set(session.exec(
            select(Subscription.id).where(Subscription.id.in_(list(mentioned - cancelled)),
                                          Subscription.status == SubscriptionStatus.CANCELLED)
        ).all())
    outbound_ids = [outbound_id for outbound_id, subs in involved.items()
                    if subs and subs & set(subscription_ids) and subs <= cancelled]
    if not outbound_ids:
        return 0
    return session.exec(
        update(OutboundMessage).where(OutboundMessage.id.in_(outbound_ids),
                                      OutboundMessage.state == OutboundState.PENDING)
        .values(state=OutboundState.FAILED, last_error="withdrawn: the subscriber unsubscribed before delivery")
    ).rowcount or 0


def expire_unconfirmed(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Cancel subscriptions never confirmed within ``jobs.confirm_hours``, so
    requests someone else made for an address stop counting against its limit."""
    cutoff = (now or utcnow()) - timedelta(hours=settings.jobs.confirm_hours)
    return session.exec(
        update(Subscription).where(Subscription.status == SubscriptionStatus.PENDING, Subscription.created_at < cutoff)
        .values(status=SubscriptionStatus.CANCELLED, updated_at=now or utcnow())
    ).rowcount or 0


def record_bounce(session: Session, settings: Settings, bounce_event_id: int) -> Subscriber | None:
    """Recount the permanent bounces for the address of one bounce event and
    suspend the subscriber at ``jobs.bounce_threshold``.

    The count is of distinct bounced messages of ours (``outbound_id``)
    since the subscriber last confirmed, not an increment, so replays,
    out-of-order processing and a DSN repeated (or listing the address many
    times) count each bounced message once.  Events tied to no message we
    sent never count."""
    event = session.get(BounceEvent, bounce_event_id)
    if event is None or not event.permanent:
        return None
    subscriber = subscriber_for(session, event.recipient)
    if subscriber is None:
        return None
    since = subscriber.confirmed_at or subscriber.created_at
    count, last = session.exec(
        select(func.count(func.distinct(BounceEvent.outbound_id)), func.max(BounceEvent.created_at))
        .where(func.lower(BounceEvent.recipient) == subscriber.email, BounceEvent.permanent.is_(True),
               BounceEvent.outbound_id.is_not(None), BounceEvent.created_at >= since)
    ).one()
    subscriber.bounce_count, subscriber.last_bounce_at = count, last
    if count >= settings.jobs.bounce_threshold and subscriber.status == SubscriberStatus.ACTIVE:
        subscriber.status = SubscriberStatus.SUSPENDED
    subscriber.updated_at = utcnow()
    session.add(subscriber)
    return subscriber
