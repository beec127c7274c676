"""Job board admin pages (admins only): list postings by status, create,
edit, approve or reject pending ones (from ``POST JOB`` email), expire.

Forms go through ``mailbot.jobs.importers.from_record`` -- the same reading
of fields as the CSV/JSON importers -- and ``board`` for every change, so a
posting made here merges with its duplicate exactly as an import would.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import func, select

from mailbot.jobs import board
from mailbot.jobs.importers import from_record
from mailbot.models.jobs import Job, JobStatus, Subscriber, Subscription
from reviewers.auth import require_admin
from reviewers.pages import render

router = APIRouter(prefix="/admin/jobs", dependencies=[Depends(require_admin)])
FIELDS = ("title", "employer", "city", "state", "work_mode", "credentials", "specialty", "experience",
          "salary_min", "salary_max", "apply_url", "apply_email", "description", "expires_at")
NOTICES = {"created": "Posting created.", "merged": "That posting already existed; it was updated instead.",
           "saved": "Posting saved.", "approved": "Approved: it goes out in the next digests.",
           "rejected": "Posting rejected.", "expired": "Posting expired."}


def _ctx(request: Request):
    return request.app.state.ctx


def _form_values(job: Job | None) -> dict[str, str]:
    if job is None:
        return {name: "" for name in FIELDS} | {"work_mode": "onsite"}
    values = {name: "" if getattr(job, name) is None else str(getattr(job, name)) for name in FIELDS}
    values["credentials"] = ", ".join(job.credentials)
    values["expires_at"] = job.expires_at.date().isoformat() if job.expires_at else ""
    return values


def _text(value) -> str:
    # NUL is refused by PostgreSQL text columns (a 500 before this).
    return str(value or "").replace("\x00", "").strip()


def _record(form) -> dict[str, str]:
    return {name: _text(form.get(name)) for name in FIELDS if _text(form.get(name))}


@router.get("")
def jobs_list(request: Request, status: str = "pending") -> Response:
    with _ctx(request).db.read() as session:
        counts = dict(session.exec(select(Job.status, func.count()).group_by(Job.status)).all())
        query = select(Job).order_by(Job.id.desc()).limit(200)
        if status not in {"all", *(s.value for s in JobStatus)}:
            status = "pending"  # an unknown filter (or a NUL, which PostgreSQL refuses) shows the default list
        if status != "all":
            query = query.where(Job.status == status)
        jobs = session.exec(query).all()
        subscribers = session.exec(select(func.count()).select_from(Subscriber)).one()
        subscriptions = dict(session.exec(select(Subscription.status, func.count())
                                          .group_by(Subscription.status)).all())
    return render(request, "web/jobs.html", {
        "jobs": jobs, "status": status, "counts": counts, "statuses": [s.value for s in JobStatus],
        "subscribers": subscribers, "subscriptions": subscriptions,
        "done_notice": NOTICES.get(request.query_params.get("done", ""), ""),
    }, title="Job board")


@router.get("/new")
def new_form(request: Request) -> Response:
    return render(request, "web/jobs_form.html", {"job": None, "form": _form_values(None)}, title="New posting")


@router.post("/new")
async def create(request: Request) -> Response:
    form = await request.form()
    record = _record(form)
    try:
        data = from_record(record, source="admin")
        with _ctx(request).db.session() as session:
            job, created = board.upsert(session, data)
    except (ValueError, board.JobError) as exc:
        return render(request, "web/jobs_form.html", {"job": None, "form": {**_form_values(None), **record}},
                      title="New posting", error=str(exc), status_code=400)
    return RedirectResponse(f"/admin/jobs/{job.id}?done={'created' if created else 'merged'}", status_code=303)


@router.get("/{job_id}")
def edit_form(job_id: int, request: Request) -> Response:
    with _ctx(request).db.read() as session:
        job = session.get(Job, job_id)
    if job is None:
        return render(request, "web/jobs.html", {"jobs": [], "status": "all", "counts": {}, "statuses": [],
                                                 "subscribers": 0, "subscriptions": {}, "done_notice": ""},
                      title="Job board", error=f"No posting J-{job_id}.", status_code=404)
    return render(request, "web/jobs_form.html", {
        "job": job, "form": _form_values(job), "done_notice": NOTICES.get(request.query_params.get("done", ""), ""),
    }, title=f"Posting {job.reference}")


@router.post("/{job_id}")
async def save(job_id: int, request: Request) -> Response:
    form = await request.form()
    record = _record(form)
    try:
        data = from_record(record, source="admin")
        # Every editable field but the posting date, which an edit keeps.
        changes = {name: getattr(data, name) for name in board.EDITABLE if name != "posted_at"}
        with _ctx(request).db.session() as session:
            board.edit(session, job_id, changes)
    except (ValueError, board.JobError) as exc:
        with _ctx(request).db.read() as session:
            job = session.get(Job, job_id)
        return render(request, "web/jobs_form.html", {"job": job, "form": {**_form_values(job), **record}},
                      title="Edit posting", error=str(exc), status_code=400)
    return RedirectResponse(f"/admin/jobs/{job_id}?done=saved", status_code=303)


def _transition(request: Request, job_id: int, fn, done: str) -> Response:
    with _ctx(request).db.session() as session:
        moved = fn(session, job_id)
    if not moved:
        return RedirectResponse(f"/admin/jobs/{job_id}", status_code=303)
    return RedirectResponse(f"/admin/jobs?status=all&done={done}", status_code=303)


@router.post("/{job_id}/approve")
def approve(job_id: int, request: Request) -> Response:
    return _transition(request, job_id, board.approve, "approved")


@router.post("/{job_id}/reject")
def reject(job_id: int, request: Request) -> Response:
    return _transition(request, job_id, board.reject, "rejected")


@router.post("/{job_id}/expire")
def expire(job_id: int, request: Request) -> Response:
    return _transition(request, job_id, board.expire, "expired")
