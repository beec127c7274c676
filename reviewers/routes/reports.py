"""Reports for reviewers and admins: the page and its CSV export."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mailbot.models import Reviewer
from mailbot.services import reports
from reviewers.auth import require_reviewer
from reviewers.pages import render

router = APIRouter()
WEEK_CHOICES = (4, 12, 26, 52)


def _build(request: Request, weeks: int) -> reports.Report:
    ctx = request.app.state.ctx
    weeks = weeks if weeks in WEEK_CHOICES else 12
    with ctx.db.read() as session:
        return reports.build(session, weeks=weeks, sla_hours=ctx.settings.web.sla_hours)


@router.get("/reports")
def report_page(request: Request, weeks: int = 12, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    report = _build(request, weeks)
    return render(request, "web/reports.html", {"r": report, "choices": WEEK_CHOICES}, title="Reports")


@router.get("/reports.csv")
def report_csv(request: Request, weeks: int = 12, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    report = _build(request, weeks)
    return Response(reports.to_csv(report), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="mailbot-report-{report.weeks}w.csv"'})
