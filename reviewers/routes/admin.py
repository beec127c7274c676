"""Admin pages: metrics, quarantine (with replay), outbox and delivery
failures, code-set versions, reviewer accounts.  Every route here requires
an admin (the router's dependency)."""

from __future__ import annotations

from email import policy
from email.parser import BytesHeaderParser

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import func, select

from mailbot.models import OutboundMessage, OutboundState, QuarantineItem, Reviewer, ReviewerRole
from mailbot.services import accounts, metrics, replay
from reviewers.auth import require_admin
from reviewers.pages import render
from workflows.actors import dispatch

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])
PAGE = 50


def _ctx(request: Request):
    return request.app.state.ctx


def _page_number(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


@router.get("")
def overview(request: Request) -> Response:
    ctx = _ctx(request)
    with ctx.db.read() as session:
        snap = metrics.snapshot(session, sla_hours=ctx.settings.web.sla_hours)
    return render(request, "web/admin_metrics.html", {"snap": snap, "sla_hours": ctx.settings.web.sla_hours},
                  title="Admin")


@router.get("/quarantine")
def quarantine(request: Request, show: str = "open") -> Response:
    page = _page_number(request)
    with _ctx(request).db.read() as session:
        query = select(QuarantineItem)
        if show != "all":
            query = query.where(QuarantineItem.resolved_at.is_(None))
        items = session.exec(query.order_by(QuarantineItem.created_at.desc(), QuarantineItem.id.desc())
                             .offset((page - 1) * PAGE).limit(PAGE + 1)).all()
    return render(request, "web/admin_quarantine.html", {"items": items[:PAGE], "more": len(items) > PAGE,
                                                          "page": page, "show": show}, title="Quarantine")


def _replayable(request: Request, qid: int) -> None:
    """Refuse (409) an item whose kind names no step we can run again."""
    import dramatiq
    from dramatiq.errors import ActorNotFound

    from mailbot.services.inbound import QUARANTINE_KINDS

    with _ctx(request).db.read() as session:
        item = session.get(QuarantineItem, qid)
    if item is None:
        raise HTTPException(404, f"No quarantine item {qid}.")
    if item.kind in QUARANTINE_KINDS or item.kind in ("outbound", "send_outbound"):
        return
    try:
        dramatiq.get_broker().get_actor(item.kind)
    except ActorNotFound:
        raise HTTPException(409, f"Items of kind {item.kind!r} cannot be replayed; resolve it once handled.") from None


@router.post("/quarantine/{qid}/replay")
def quarantine_replay(qid: int, request: Request, admin: Reviewer = Depends(require_admin)) -> Response:
    _replayable(request, qid)
    try:
        pokes = replay.replay(_ctx(request), qid, admin.email)
    except replay.ReplayError as exc:
        raise HTTPException(409, str(exc)) from None
    dispatch(pokes)
    return RedirectResponse("/admin/quarantine?done=replayed", status_code=303)


@router.post("/quarantine/{qid}/resolve")
def quarantine_resolve(qid: int, request: Request, admin: Reviewer = Depends(require_admin)) -> Response:
    try:
        replay.resolve(_ctx(request), qid, admin.email)
    except replay.ReplayError as exc:
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse("/admin/quarantine?done=resolved", status_code=303)


def _maildir_listing(path, limit: int = 50) -> list[dict[str, str]]:
    """The newest files in the embedded Maildir outbox (headers only)."""
    folder = path / "new"
    if not folder.is_dir():
        return []
    files = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]
    parser = BytesHeaderParser(policy=policy.default)
    listing = []
    for file in files:
        with file.open("rb") as fh:
            headers = parser.parse(fh)
        listing.append({"file": file.name, "to": str(headers.get("To", "")), "subject": str(headers.get("Subject", "")),
                        "date": str(headers.get("Date", "")), "kind": str(headers.get("X-Mailbot-Kind", ""))})
    return listing


@router.get("/outbox")
def outbox(request: Request, state: str = "") -> Response:
    ctx = _ctx(request)
    page = _page_number(request)
    with ctx.db.read() as session:
        query = select(OutboundMessage.id, OutboundMessage.kind, OutboundMessage.to_addr, OutboundMessage.subject,
                       OutboundMessage.state, OutboundMessage.attempts, OutboundMessage.last_error,
                       OutboundMessage.created_at, OutboundMessage.sent_at, OutboundMessage.consultation_id,
                       OutboundMessage.transport)
        if state in {s.value for s in OutboundState}:
            query = query.where(OutboundMessage.state == state)
        rows = session.exec(query.order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
                            .offset((page - 1) * PAGE).limit(PAGE + 1)).all()
        counts = dict(session.exec(select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)).all())
    maildir = _maildir_listing(ctx.settings.outbox_path) if not ctx.settings.relay.host else []
    return render(request, "web/admin_outbox.html", {
        "rows": rows[:PAGE], "more": len(rows) > PAGE, "page": page, "state": state, "counts": counts,
        "maildir": maildir, "outbox_path": str(ctx.settings.outbox_path), "relay": ctx.settings.relay.host,
    }, title="Outbox")


@router.get("/outbox/{oid}")
def outbox_message(oid: int, request: Request) -> Response:
    with _ctx(request).db.read() as session:
        row = session.get(OutboundMessage, oid)
    if row is None:
        raise HTTPException(404, "No such outbound message.")
    return render(request, "web/admin_outbound.html", {"o": row, "raw": row.raw.decode("utf-8", "replace")},
                  title=f"Outbound {oid}")


@router.post("/outbox/{oid}/retry")
def outbox_retry(oid: int, request: Request, admin: Reviewer = Depends(require_admin)) -> Response:
    try:
        pokes = replay.retry_outbound(_ctx(request), oid, admin.email)
    except replay.ReplayError as exc:
        raise HTTPException(409, str(exc)) from None
    dispatch(pokes)
    return RedirectResponse("/admin/outbox?state=failed&done=retrying", status_code=303)


@router.get("/codesets")
def codesets(request: Request) -> Response:
    problem, versions = "", []
    with _ctx(request).db.read() as session:
        try:
            from mailbot.codes.catalogue import version_table

            versions = version_table(session)
        except Exception as exc:  # the page explains instead of failing
            problem = f"Code-set versions unavailable: {exc}"
    return render(request, "web/admin_codesets.html", {"versions": versions, "problem": problem},
                  title="Code sets")


@router.get("/reviewers")
def reviewer_list(request: Request) -> Response:
    with _ctx(request).db.read() as session:
        people = accounts.list_reviewers(session)
    return render(request, "web/admin_reviewers.html", {"people": people, "roles": [r.value for r in ReviewerRole],
                                                         "form": {}}, title="Reviewers")


@router.post("/reviewers")
def reviewer_add(request: Request, email: str = Form(""), name: str = Form(""), credential: str = Form(""),
                 role: str = Form("reviewer"), password: str = Form("")) -> Response:
    ctx = _ctx(request)
    try:
        with ctx.db.session() as session:
            accounts.add_reviewer(session, email, name=name, credential=credential, role=role, password=password)
    except accounts.AccountError as exc:
        with ctx.db.read() as session:
            people = accounts.list_reviewers(session)
        return render(request, "web/admin_reviewers.html", {
            "people": people, "roles": [r.value for r in ReviewerRole],
            "form": {"email": email, "name": name, "credential": credential, "role": role},
        }, title="Reviewers", status_code=422, error=str(exc))
    return RedirectResponse("/admin/reviewers?done=added", status_code=303)


@router.post("/reviewers/{rid}/{action}")
def reviewer_toggle(rid: int, action: str, request: Request, admin: Reviewer = Depends(require_admin)) -> Response:
    if action not in ("disable", "enable"):
        raise HTTPException(404, "Unknown action.")
    if rid == admin.id and action == "disable":
        raise HTTPException(409, "You cannot disable your own account.")
    with _ctx(request).db.session() as session:
        person = session.get(Reviewer, rid)
        if person is None:
            raise HTTPException(404, "No such reviewer.")
        accounts.set_active(session, person.email, action == "enable")
    return RedirectResponse(f"/admin/reviewers?done={action}d", status_code=303)
