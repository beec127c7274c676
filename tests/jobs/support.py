"""Small builders for job board tests (real rows, real services)."""

from __future__ import annotations

from datetime import UTC, datetime

from mailbot.jobs import board, subscriptions
from mailbot.jobs.criteria import parse_request
from mailbot.jobs.importers import JobInput
from mailbot.models.jobs import Job, Subscription

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def add_job(session, title: str, *, employer: str = "Acme Health", opened: datetime = NOW, **fields) -> Job:
    data = JobInput(title=title, employer=employer, apply_url=fields.pop("apply_url", f"https://acme.example/{title.replace(' ', '-')}"),
                    **fields)
    job, _ = board.upsert(session, data, now=opened)
    return job


def active_subscription(session, settings, email: str, text: str, *, now: datetime = NOW) -> Subscription:
    """Subscribe and confirm, as the confirmation link would."""
    sub = subscriptions.subscribe(session, email, parse_request(text), raw_request=text, now=now)
    return subscriptions.confirm(session, settings, sub.id, sub.confirm_token, now=now)
