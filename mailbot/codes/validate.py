"""Verify the codes cited in an answer for a date of service.

Used by drafting (before a reviewer sees a draft) and by approval (a cited
code flagged invalid blocks sending).  Built on :func:`lookup`, so the
verdict is exactly what a LOOKUP shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlmodel import Session

from mailbot.codes.lookup import lookup

OK_STATUSES = frozenset({"ok", "unlicensed_descriptor"})


@dataclass
class Verdict:
    input: str
    code: str
    system: str | None
    status: str  # ok, invalid, unknown, not_billable, terminated, not_yet_valid, unlicensed_descriptor
    message: str
    version: str | None
    title: str | None = None

    @property
    def ok(self) -> bool:
        """Exists, is valid on the date and is billable (CPT known by number counts: its descriptor
        is licensed, not missing)."""
        return self.status in OK_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify(session: Session, codes: list[str], on: date | None = None) -> list[Verdict]:
    """One verdict per code, in order."""
    return [Verdict(input=c.input, code=c.code, system=c.system, status=c.status, message=c.message,
                    version=c.version, title=c.title) for c in lookup(session, codes, on)]
