"""Reviewer accounts (certified coders and admins)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from mailbot.models.base import utcnow


class ReviewerRole(StrEnum):
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Reviewer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=512, unique=True)
    name: str = Field(max_length=255)
    credential: str = Field(default="", max_length=64)   # CPC, CCS, ...
    role: str = Field(default=ReviewerRole.REVIEWER, max_length=16)
    password_hash: str = Field(default="", max_length=255)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None
    notify_by_mail: bool = True                          # mail me when an item is assigned to me or its asker replies


class ReviewerSession(SQLModel, table=True):
    """One login, kept server-side so logging out ends it for good: the
    cookie names the session, and a session that ended (or whose reviewer
    was disabled) opens nothing, whatever the cookie's signature says.
    ``id`` is the SHA-256 of the random token in the cookie (a database
    read does not give anyone a working cookie)."""

    __tablename__ = "reviewer_session"

    id: str = Field(primary_key=True, max_length=64)
    reviewer_id: int = Field(foreign_key="reviewer.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
