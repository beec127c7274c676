"""Admin pages for canned responses (macros): list, write, change, retire.
Reviewers insert them from the editor (see routes.consultation)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from mailbot.models import Macro, Reviewer
from mailbot.services import macros
from mailbot.services.consultation_state import ConsultationError
from reviewers.auth import require_admin
from reviewers.pages import render

router = APIRouter(prefix="/admin/macros", dependencies=[Depends(require_admin)])


def _list(request: Request, *, error: str = "", kept: dict | None = None, status_code: int = 200) -> Response:
    with request.app.state.ctx.db.read() as session:
        rows = session.exec(select(Macro).order_by(Macro.active.desc(), Macro.name)).all()
    edit = None
    wanted = request.query_params.get("edit", "")
    if wanted.isdigit():
        edit = next((m for m in rows if m.id == int(wanted)), None)
    return render(request, "web/admin_macros.html", {
        "macros": rows, "variables": macros.VARIABLES, "edit": edit, "kept": kept or {},
    }, title="Canned responses", error=error, status_code=status_code)


@router.get("")
def macro_list(request: Request) -> Response:
    return _list(request)


@router.post("")
def macro_save(request: Request, name: str = Form(""), body: str = Form(""), macro_id: str = Form(""),
               admin: Reviewer = Depends(require_admin)) -> Response:
    try:
        macros.save(request.app.state.ctx, admin.id, name, body, int(macro_id) if macro_id.isdigit() else None)
    except ConsultationError as exc:
        return _list(request, error=f"Not saved: {exc}.", kept={"name": name, "body": body, "macro_id": macro_id},
                     status_code=422)
    return RedirectResponse("/admin/macros?done=macro_saved", status_code=303)


@router.post("/{mid}/retire")
def macro_retire(mid: int, request: Request) -> Response:
    try:
        macros.retire(request.app.state.ctx, mid)
    except ConsultationError as exc:
        return _list(request, error=f"Not done: {exc}.", status_code=404)
    return RedirectResponse("/admin/macros?done=macro_retired", status_code=303)
