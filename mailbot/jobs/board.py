"""Postings: create, merge duplicates, edit, approve, reject, expire.

A posting is the same as an existing one when its normalised apply URL or its
employer + title + location match; the newer source then fills in and
updates the existing row instead of adding a second one.  ``opened_at`` is
set once, when a posting first becomes open: digests list the jobs opened
since the subscriber's last digest, so an edit or a re-import does not make
an old posting "new" again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import or_, update
from sqlmodel import Session, select

from mailbot.jobs import fields
from mailbot.jobs.importers import JobInput
from mailbot.models.base import utcnow
from mailbot.models.jobs import Job, JobStatus

# Fields an import or an edit may set (the rest is bookkeeping).
EDITABLE = (
    "title", "employer", "city", "state", "work_mode", "credentials", "specialty", "experience",
    "salary_min", "salary_max", "salary_period", "apply_url", "apply_email", "description",
    "posted_at", "expires_at",
)


class JobError(Exception):
    """A posting that cannot be created or moved (shown to the admin as is)."""


@dataclass
class ImportReport:
    created: list[int] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.created)} created, {len(self.merged)} merged into existing postings, {len(self.problems)} skipped"


def find_duplicate(session: Session, url_key: str, identity_key: str, exclude_id: int | None = None) -> Job | None:
    conditions = [Job.identity_key == identity_key]
    if url_key:
        conditions.append(Job.url_key == url_key)
    query = select(Job).where(or_(*conditions), Job.status != JobStatus.REJECTED)
    if exclude_id is not None:
        query = query.where(Job.id != exclude_id)
    # Prefer a URL match, then the oldest row.
    rows = session.exec(query.order_by(Job.id)).all()
    return next((r for r in rows if url_key and r.url_key == url_key), rows[0] if rows else None)


def _keys(job: Job) -> None:
    job.url_key = fields.url_key(job.apply_url)
    job.identity_key = fields.identity_key(job.employer, job.title, job.city, job.state, job.work_mode)


def upsert(session: Session, data: JobInput, *, status: str = JobStatus.OPEN,
           submitted_by: str = "", now: datetime | None = None) -> tuple[Job, bool]:
    """Add a posting or merge it into its duplicate; returns ``(job, created)``."""
    now = now or utcnow()
    values = {k: v for k, v in asdict(data).items() if k in EDITABLE}
    if not data.apply_url and not data.apply_email:
        raise JobError(f"{data.title!r} at {data.employer!r}: a posting needs an apply URL or an apply address")
    probe = Job(**{k: v for k, v in values.items() if v is not None})
    _keys(probe)
    existing = find_duplicate(session, probe.url_key, probe.identity_key)
    if existing is not None:
        for key, value in values.items():
            if value not in (None, "", []):
                setattr(existing, key, value)
        _keys(existing)
        existing.updated_at = now
        if existing.status == JobStatus.EXPIRED and existing.expires_at and existing.expires_at > now:
            existing.status = JobStatus.OPEN
        session.add(existing)
        session.flush()
        return existing, False
    job = probe
    job.posted_at = data.posted_at or now
    job.source, job.source_ref, job.submitted_by = data.source, data.source_ref[:1000], submitted_by
    job.status = status
    if job.expires_at is not None and job.expires_at <= now:
        job.status = JobStatus.EXPIRED
    if job.status == JobStatus.OPEN:
        job.opened_at = now
    job.created_at = job.updated_at = now
    session.add(job)
    session.flush()
    return job, True


def import_inputs(session: Session, inputs: list[JobInput], problems: list[str] | None = None) -> ImportReport:
    report = ImportReport(problems=list(problems or []))
    for data in inputs:
        try:
            job, created = upsert(session, data)
        except JobError as exc:
            report.problems.append(f"{data.source_ref or data.title}: {exc}")
            continue
        (report.created if created else report.merged).append(job.id)
    return report


def edit(session: Session, job_id: int, changes: dict, now: datetime | None = None) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobError(f"no job J-{job_id}")
    for key, value in changes.items():
        if key not in EDITABLE:
            raise JobError(f"{key} cannot be edited")
        setattr(job, key, value)
    _keys(job)
    if not job.title or not job.employer:
        raise JobError("a posting needs a title and an employer")
    job.updated_at = now or utcnow()
    session.add(job)
    session.flush()
    return job


def _move(session: Session, job_id: int, sources: tuple[str, ...], target: str, now: datetime, **extra) -> bool:
    """Conditional state change: true when this call moved the row."""
    result = session.exec(
        update(Job).where(Job.id == job_id, Job.status.in_(sources)).values(status=target, updated_at=now, **extra)
    )
    return result.rowcount == 1


def approve(session: Session, job_id: int, now: datetime | None = None) -> bool:
    """pending -> open (it counts as new from now on)."""
    now = now or utcnow()
    return _move(session, job_id, (JobStatus.PENDING,), JobStatus.OPEN, now, opened_at=now)


def reject(session: Session, job_id: int, now: datetime | None = None) -> bool:
    return _move(session, job_id, (JobStatus.PENDING,), JobStatus.REJECTED, now or utcnow())


def expire(session: Session, job_id: int, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return _move(session, job_id, (JobStatus.OPEN, JobStatus.PENDING), JobStatus.EXPIRED, now)


def expire_overdue(session: Session, now: datetime | None = None) -> int:
    """Expire every open posting past its ``expires_at``; returns how many."""
    now = now or utcnow()
    result = session.exec(
        update(Job).where(Job.status == JobStatus.OPEN, Job.expires_at.is_not(None), Job.expires_at <= now)
        .values(status=JobStatus.EXPIRED, updated_at=now)
    )
    return result.rowcount or 0
