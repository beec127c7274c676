"""Shared column helpers.

Timestamps are timezone-aware UTC everywhere.  SQLModel's ``UTCDateTime``
column type refuses naive values and returns aware UTC from both SQLite and
PostgreSQL, so the two databases cannot drift by hours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field


def utcnow() -> datetime:
    """Now, as aware UTC (the only kind of datetime stored)."""
    return datetime.now(UTC)


def json_field(default_factory=list, **kwargs: Any) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False), **kwargs)


def blob_field(nullable: bool = False) -> Any:
    return Field(default=None if nullable else b"", sa_column=Column(LargeBinary, nullable=nullable))
