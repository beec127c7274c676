"""Job board tables: postings, subscribers, their subscriptions, digest runs.

- :class:`Job` -- one posting.  ``url_key`` / ``identity_key`` are hashes of
  the normalised apply URL and of employer+title+location; the importers
  merge a posting into an existing row when either key matches.
- :class:`Subscriber` -- one email address (several subscriptions each).
- :class:`Subscription` -- what to send (``kind`` jobs | updates, criteria),
  how often, and when next (``next_due_at``, claimed by the scheduler with a
  conditional update so two schedulers never both take it).
- :class:`DigestRun` -- one digest email for one subscriber and one period;
  the unique ``(subscriber_id, period_key)`` pair is the exactly-once guard,
  and ``state`` moves pending -> sent | skipped in the same transaction that
  queues the email.  A job digest has one section per subscription due in
  that period (``sections``); a code-update run belongs to one subscription
  (``subscription_id``, period ``codes:<version>/S-<id>``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from mailbot.models.base import json_field, utcnow


class JobStatus(StrEnum):
    PENDING = "pending"      # submitted by email, waiting for an admin
    OPEN = "open"
    EXPIRED = "expired"
    REJECTED = "rejected"


class WorkMode(StrEnum):
    REMOTE = "remote"
    HYBRID = "hybrid"
    ONSITE = "onsite"


class Job(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    employer: str = Field(max_length=300)
    city: str = Field(default="", max_length=120)
    state: str = Field(default="", max_length=2, index=True)      # US state code, upper case
    work_mode: str = Field(default=WorkMode.ONSITE, max_length=16, index=True)
    credentials: list[str] = json_field()                          # required: CPC, CCS, ...
    specialty: str = Field(default="", max_length=200)
    experience: str = Field(default="", max_length=200)           # as written ("3+ years")
    experience_years: int | None = None
    salary_min: int | None = None
    salary_max: int | None = None
    salary_period: str = Field(default="", max_length=16)         # year | hour
    apply_url: str = Field(default="", max_length=2000)
    apply_email: str = Field(default="", max_length=512)
    description: str = ""
    posted_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = Field(default=None, index=True)
    status: str = Field(default=JobStatus.OPEN, max_length=16, index=True)
    opened_at: datetime | None = Field(default=None, index=True)  # when it became open: digests list jobs opened since the last one
    source: str = Field(default="admin", max_length=32)           # admin | csv | json | feed | jsonld | email
    source_ref: str = Field(default="", max_length=1000)          # feed entry id, file name ...
    url_key: str = Field(default="", max_length=64, index=True)
    identity_key: str = Field(default="", max_length=64, index=True)
    submitted_by: str = Field(default="", max_length=512)         # employer address for POST JOB
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def reference(self) -> str:
        return f"J-{self.id}"

    @property
    def location(self) -> str:
        place = ", ".join(p for p in (self.city, self.state) if p)
        if self.work_mode == WorkMode.REMOTE:
            return f"Remote ({place})" if place else "Remote"
        if self.work_mode == WorkMode.HYBRID:
            return f"Hybrid, {place}" if place else "Hybrid"
        return place or "On-site"


class SubscriberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"          # too many bounces
    UNSUBSCRIBED = "unsubscribed"


class Subscriber(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=512, unique=True)             # lower case
    status: str = Field(default=SubscriberStatus.ACTIVE, max_length=16, index=True)
    bounce_count: int = 0
    last_bounce_at: datetime | None = None
    confirmed_at: datetime | None = None                        # latest confirmation; bounces count from here
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SubscriptionKind(StrEnum):
    JOBS = "jobs"
    UPDATES = "updates"              # code-set changes


class SubscriptionStatus(StrEnum):
    PENDING = "pending_confirmation"
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class Subscription(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    kind: str = Field(default=SubscriptionKind.JOBS, max_length=16, index=True)
    criteria: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: str = Field(default="", max_length=1000)            # the criteria in words
    request: str = Field(default="", max_length=1000)            # what the subscriber typed
    frequency: str = Field(default=Frequency.WEEKLY, max_length=16)
    status: str = Field(default=SubscriptionStatus.PENDING, max_length=24, index=True)
    next_due_at: datetime | None = Field(default=None, index=True)
    last_digest_at: datetime | None = None                        # end of the window of the last digest
    confirm_token: str = Field(default="", max_length=64, index=True)
    confirmed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def reference(self) -> str:
        return f"S-{self.id}"


class DigestState(StrEnum):
    PENDING = "pending"              # claimed, email not yet queued
    SENT = "sent"                    # email queued (OutboundMessage)
    SKIPPED = "skipped"              # nothing new, or the subscription stopped meanwhile


class DigestRun(SQLModel, table=True):
    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("subscriber_id", "period_key", name="uq_digest_run_subscriber_period"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    subscription_id: int | None = Field(default=None, foreign_key="subscription.id", index=True)  # code updates only
    period_key: str = Field(max_length=40)                        # d:2026-11-24 | w:2026-W48 | codes:<version id>/S-<id>
    # Job digests: [{"s": subscription id, "since": ISO time or None, "jobs": [listed ids], "also": [ids]}]
    sections: list[Any] = json_field()
    state: str = Field(default=DigestState.PENDING, max_length=16, index=True)
    window_start: datetime | None = None
    window_end: datetime = Field(default_factory=utcnow)
    item_ids: list[Any] = json_field()                            # job ids (or changed codes) listed
    outbound_id: int | None = Field(default=None, foreign_key="outbound_message.id")
    reason: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
