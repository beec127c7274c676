"""Is a code valid and billable on a date of service, and which release says so?

:func:`status_on` gives a dated verdict for one code from the validity
intervals in ``code_entry`` (through the in-memory :mod:`.knowledge`): the
fiscal year (ICD-10-CM) or release (HCPCS) in force on the date, the title as
of that date, billable or header, and since when.  Dates of service before
2015-10-01 are ICD-9-CM era, which no shipped set covers: they get a verdict
saying so instead of a wrong "not valid".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session

from mailbot.codes.knowledge import Knowledge, Row, get_knowledge

ICD10_START = date(2015, 10, 1)
ICD9_MESSAGE = ("{date} is before 2015-10-01, when ICD-10-CM replaced ICD-9-CM; ICD-9-CM codes are not "
                "covered by this service, so {code} cannot be checked for that date")
LABELS = {"icd10cm": "ICD-10-CM", "hcpcs": "HCPCS Level II", "cpt": "CPT", "modifier": "HCPCS Level II modifier"}


@dataclass
class Status:
    """A dated verdict on one code."""

    system: str
    code: str
    on: str
    date_assumed: bool            # no date of service was given: ``on`` is today
    status: str                   # ok, not_billable, terminated, not_yet_valid, unknown, icd9_era
    message: str
    found: bool = False
    valid: bool | None = None     # present in the set in force on the date
    billable: bool | None = None
    title: str | None = None
    version: str | None = None    # "ICD-10-CM FY2021", "HCPCS Level II 2025 Jan"
    since: str = ""               # "header since FY2022 (2021-10-01)", "terminated 2024-03-31"
    successors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fiscal_year(on: date) -> int:
    return on.year + 1 if on.month >= 10 else on.year


def when_text(on: date, assumed: bool) -> str:
    """``2021-06-01``, or ``2026-12-02 (today; no date of service given)``."""
    return f"{on.isoformat()} (today; no date of service given)" if assumed else on.isoformat()


def release_of(knowledge: Knowledge, system: str, on: date, row: Row | None) -> str | None:
    """The set in force on ``on`` (ICD-10-CM by fiscal year), else the row's own release."""
    kind = "hcpcs" if system == "modifier" else system
    version = knowledge.catalogue.fiscal_version(kind, on)
    if version is not None:
        return knowledge.catalogue.name(version.id)
    return knowledge.catalogue.name(row.version_id) if row is not None else None


def year_label(knowledge: Knowledge, row: Row) -> str:
    """How the release that started ``row`` is named in a sentence: ``FY2022 (2021-10-01)``."""
    version = knowledge.catalogue.by_id.get(row.version_id)
    if version is None:
        return row.valid_from.isoformat()
    if version.kind == "icd10cm":
        return f"FY{fiscal_year(row.valid_from)} ({row.valid_from.isoformat()})"
    return f"{version.version} release ({row.valid_from.isoformat()})"


def status_on(source: Session | Knowledge, system: str, code: str, on: date | None = None, *,
              with_successors: bool = True) -> Status:
    """The verdict on ``code`` (canonical form, e.g. ``M54.5``, ``J1030``) for ``on`` (today when None)."""
    knowledge = get_knowledge(source)
    assumed = on is None
    on = on or date.today()
    when = when_text(on, assumed)
    verdict = Status(system=system, code=code, on=on.isoformat(), date_assumed=assumed, status="unknown",
                     message=f"{code} is not in the imported {LABELS.get(system, system)} code sets")
    if system == "icd10cm" and on < ICD10_START:
        verdict.status, verdict.message = "icd9_era", ICD9_MESSAGE.format(date=on.isoformat(), code=code)
        verdict.version = "ICD-9-CM era (not covered)"
        return verdict
    rows = knowledge.rows_of(system, code)
    if not rows:
        return verdict
    current = next((r for r in rows if r.valid_on(on)), None)
    row = current or (rows[0] if rows[0].valid_from > on else rows[-1])
    verdict.found, verdict.title, verdict.valid = True, row.title, current is not None
    verdict.billable = row.billable
    verdict.version = release_of(knowledge, system, on, row)
    cite = f" ({verdict.version})" if verdict.version else ""
    if current is None and row.valid_from > on:
        verdict.status = "not_yet_valid"
        verdict.since = f"added {year_label(knowledge, row)}"
        verdict.message = (f"{code} takes effect on {row.valid_from.isoformat()} ({verdict.since}); not valid on "
                           f"{when}{cite}")
    elif current is None:
        verdict.status = "terminated"
        verdict.since = f"ended {row.valid_to.isoformat()}"
        what = "deleted" if system == "icd10cm" else "terminated"
        verdict.message = f"{code} was {what}: valid until {row.valid_to.isoformat()}; not valid on {when}{cite}"
    elif not current.billable:
        verdict.status = "not_billable"
        was = _last_billable(rows, current)
        verdict.since = (f"header since {year_label(knowledge, current)}, billable until "
                         f"{was.valid_to.isoformat()}") if was else ""
        verdict.message = (f"{code} is a header, not billable on {when}{cite}"
                           + (f"; {verdict.since}" if was else "") + ": report one of its more specific codes")
    else:
        verdict.status = "ok"
        verdict.message = f"{code} is valid and billable on {when}{cite}"
    if with_successors and verdict.status in ("not_billable", "terminated", "not_yet_valid"):
        from mailbot.codes.successors import successors

        verdict.successors = successors(knowledge, system, code, on)
    return verdict


def _last_billable(rows: tuple[Row, ...], current: Row) -> Row | None:
    """The billable row just before ``current`` (a billable code that became a header)."""
    before = [r for r in rows if r.valid_to is not None and r.valid_to < current.valid_from]
    return before[-1] if before and before[-1].billable else None
