"""Verify the codes cited in an answer for a date of service.

Used by drafting (before a reviewer sees a draft) and by approval (a cited
code flagged invalid blocks sending).  Built on :func:`lookup`, so the
verdict is exactly what a LOOKUP shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session

from mailbot.codes.lookup import lookup

OK_STATUSES = frozenset({"ok", "unlicensed_descriptor"})
# statuses: ok, unlicensed_descriptor, not_billable, terminated, not_yet_valid, unknown, invalid,
# icd9_era (a date before 2015-10-01: ICD-10-CM did not apply, ICD-9-CM is not covered)


@dataclass
class Verdict:
    input: str
    code: str
    system: str | None
    status: str  # ok, invalid, unknown, not_billable, terminated, not_yet_valid, unlicensed_descriptor
    message: str
    version: str | None
    title: str | None = None
    since: str = ""                   # "header since FY2022 (2021-10-01), ..."
    successors: list[dict[str, Any]] = field(default_factory=list)  # what to report instead
    date_assumed: bool = False        # no date of service given: checked for today

    @property
    def ok(self) -> bool:
        """Exists, is valid on the date and is billable (CPT known by number counts: its descriptor
        is licensed, not missing)."""
        return self.status in OK_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify(session: Session, codes: list[str], on: date | None = None) -> list[Verdict]:
    """One verdict per code, in order."""
    return [verdict_of(c) for c in lookup(session, codes, on)]


def verdict_of(card) -> Verdict:
    """The verdict part of a :class:`~mailbot.codes.lookup.CodeCard`."""
    return Verdict(input=card.input, code=card.code, system=card.system, status=card.status, message=card.message,
                   version=card.version, title=card.title, since=card.since, successors=list(card.successors),
                   date_assumed=card.date_assumed)
