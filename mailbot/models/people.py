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
