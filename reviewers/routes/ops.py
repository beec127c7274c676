"""Operations endpoints: the front door, ``/healthz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mailbot.models import ReviewerRole
from reviewers.auth import current_reviewer, public

router = APIRouter()


@router.get("/")
def home() -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.api_route("/healthz", methods=["GET", "HEAD"])
@public
def healthz(request: Request) -> Response:
    """Public liveness/readiness: the database, and every part this process
    runs (the SMTP intake writer, the queue worker) as they really are --
    503 naming the part when one does not work."""
    ctx = request.app.state.ctx
    parts = {"database": "ok"}
    try:
        ctx.db.ping()
    except Exception:
        parts["database"] = "database unavailable"
    parts.update(ctx.health.report())
    broken = sorted(name for name, state in parts.items() if state != "ok")
    if broken:
        return JSONResponse({"status": f"{', '.join(broken)} not working", "parts": parts}, status_code=503)
    return JSONResponse({"status": "ok", "parts": parts})


@router.get("/metrics")
@public
def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format, for an admin session or a scraper on an
    address listed in ``web.metrics_hosts``."""
    client = request.client.host if request.client else ""
    # A request relayed by a proxy is not "from" the proxy's host: only a
    # scraper connecting directly counts as local.
    relayed = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    reviewer = current_reviewer(request)
    is_admin = reviewer is not None and reviewer.role == ReviewerRole.ADMIN
    if not is_admin and (relayed or client not in request.app.state.ctx.settings.web.metrics_hosts):
        return PlainTextResponse("metrics are for administrators and web.metrics_hosts", status_code=403)
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
