"""One consultation: the detail page, its actions, attachments and audit log.

Edits go through the consultation service (``mailbot.services.consultations``)
with the version the reviewer loaded, so a save based on a stale page is
refused (:class:`StaleEdit`) instead of overwriting someone's work; the
reviewer's text is shown back to them with the message.  Actions also
require holding the claim.  After a successful action the service's pokes
are dispatched and the browser is redirected (POST/redirect/GET).
"""

from __future__ import annotations

import difflib
from typing import Any, Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from mailbot.models import Attachment, Consultation, InboundMessage, Reviewer, ReviewerRole
from mailbot.services import claims
from mailbot.services import consultation_mail as mails
from mailbot.services import asker_history, draft_versions, macros
from mailbot.services import notes as notes_service
from reviewers import knowledge, thread
from reviewers.auth import require_admin, require_reviewer
from reviewers.pages import redacted, render
from workflows.actors import dispatch

router = APIRouter()
SYSTEM_LABELS = {"icd10cm": "ICD-10-CM", "cpt": "CPT", "hcpcs": "HCPCS", "modifier": "modifier"}

# Attachments are always downloaded, never displayed, and only these types
# keep their own content type (the rest is served as opaque bytes).
_PASSTHROUGH_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain", "text/csv"}


def _ctx(request: Request):
    return request.app.state.ctx


def _service():
    from mailbot.services import consultations

    return consultations


def _cited(draft) -> list[str]:
    if draft is None:
        return []
    return [c.get("code") for c in (draft.cited_codes or []) if isinstance(c, dict) and c.get("code")]


def _page(request: Request, reviewer: Reviewer, cid: int, *, status_code: int = 200, error: str = "",
          kept: dict[str, str] | None = None, problems: list | None = None) -> Response:
    ctx = _ctx(request)
    with ctx.db.read() as session:
        loaded = thread.load(session, cid)
        if loaded is None:
            raise HTTPException(404, f"There is no consultation Q-{cid}.")
        cited = _cited(loaded.draft)
        mentioned = [code for e in loaded.entries for code in e.codes]
        facts = knowledge.facts(session, cited or mentioned, on=loaded.consultation.date_of_service)
        panel = knowledge.quick_lookup(session, request.query_params.get("q", ""))
        frame = mails.frame(ctx.settings, loaded.consultation, reviewer)
        notes = notes_service.for_consultation(session, cid)
        canned = macros.filled_for(session, loaded.consultation, reviewer)
        history = asker_history.earlier(session, loaded.consultation)
        others = []
        if reviewer.role == ReviewerRole.ADMIN:
            others = session.exec(select(Reviewer.id, Reviewer.name).where(Reviewer.active.is_(True))
                                  .order_by(Reviewer.name)).all()
    c = loaded.consultation
    return render(request, "web/detail.html", {
        "t": loaded, "c": c, "facts": facts, "panel": panel, "cited": cited, "mentioned": mentioned,
        "mine": c.claimed_by_id == reviewer.id, "others": others,
        "kept": kept or {}, "problems": problems or [], "frame": frame, "notes": notes, "macros": canned,
        "history": history, "stored_verdicts": {d.get("code"): d for d in (loaded.draft.cited_codes if loaded.draft else [])
                                                 if isinstance(d, dict)},
        "sla_hours": ctx.settings.web.sla_hours, "system_labels": SYSTEM_LABELS,
    }, title=f"{c.reference} {redacted(c.subject)}"[:120], status_code=status_code, error=error)


@router.get("/consultations/{cid}")
def detail(cid: int, request: Request, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    return _page(request, reviewer, cid)


def _not_holder(request: Request, reviewer: Reviewer, cid: int) -> str:
    """Why ``reviewer`` may not change ``cid`` (empty: they hold the claim)."""
    with _ctx(request).db.read() as session:
        c = session.get(Consultation, cid)
        if c is None:
            raise HTTPException(404, f"There is no consultation Q-{cid}.")
        holder = session.get(Reviewer, c.claimed_by_id) if c.claimed_by_id else None
    if holder is not None and holder.id == reviewer.id:
        return ""
    who = f"{holder.name} <{holder.email}>" if holder else "nobody"
    return (f"Q-{cid} is claimed by {who}. Claim it before changing it." if holder is None else
            f"Q-{cid} is claimed by {who}; only they can change it (an admin can reassign it).")


def _act(request: Request, reviewer: Reviewer, cid: int, call: Callable[[], list], done: str,
         kept: dict[str, str] | None = None, need_claim: bool = True) -> Response:
    """Run a service call for the claim holder; map the service's refusals to a clear page."""
    service = _service()
    if need_claim:
        message = _not_holder(request, reviewer, cid)
        if message:
            return _page(request, reviewer, cid, status_code=409, error=message, kept=kept)
    try:
        pokes = call()
    except service.StaleEdit:
        return _page(request, reviewer, cid, status_code=409, kept=kept, error=(
            "Someone changed this consultation after you opened it. Your text is kept in the editor below; "
            "compare it with the latest version (see the audit log) and save again."))
    except service.ApprovalRefused as exc:
        return _page(request, reviewer, cid, status_code=422, kept=kept, problems=exc.problems, error=(
            "Not sent: " + str(exc) + ". Fix the answer, or give a reason to send it anyway."))
    except service.InvalidTransition as exc:
        return _page(request, reviewer, cid, status_code=409, kept=kept,
                     error=f"That action is not possible now: {exc}")
    except service.ConsultationError as exc:  # e.g. UnverifiedCodes: a cited code does not exist
        return _page(request, reviewer, cid, status_code=422, kept=kept,
                     error=f"Not done: {exc}.")
    dispatch(list(pokes or []))
    return RedirectResponse(f"/consultations/{cid}?done={done}", status_code=303)


@router.post("/consultations/{cid}/save")
def save(cid: int, request: Request, body: str = Form(""), version: int = Form(...),
         reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    ctx = _ctx(request)
    return _act(request, reviewer, cid, lambda: _service().save_draft(ctx, cid, reviewer.id, body, version),
                "saved", kept={"body": body})


@router.post("/consultations/{cid}/approve")
def approve(cid: int, request: Request, body: str = Form(""), version: int = Form(...),
            override_reason: str = Form(""), reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    ctx = _ctx(request)
    if not body.strip():
        return _page(request, reviewer, cid, status_code=422, error="The answer is empty.", kept={"body": body})
    return _act(request, reviewer, cid,
                lambda: _service().approve(ctx, cid, reviewer.id, body, version, override_reason=override_reason),
                "approved", kept={"body": body, "override_reason": override_reason})


# The preview page shows the mail's own HTML in a sandboxed srcdoc frame.  A
# srcdoc document inherits this page's policy, so this one page lets inline
# styles through (the mail's CSS is inlined); scripts stay blocked twice over
# (script-src 'self' and the frame's empty sandbox).
PREVIEW_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
               "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@router.post("/consultations/{cid}/preview")
def preview(cid: int, request: Request, body: str = Form(""), version: int = Form(...),
            reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    """The exact mail approval would send for ``body``, and the final confirm."""
    ctx = _ctx(request)
    kept = {"body": body}
    message = _not_holder(request, reviewer, cid)
    if message:
        return _page(request, reviewer, cid, status_code=409, error=message, kept=kept)
    if not body.strip():
        return _page(request, reviewer, cid, status_code=422, error="The answer is empty.", kept=kept)
    try:
        shown = _service().preview_answer(ctx, cid, reviewer.id, body)
    except _service().ConsultationError as exc:
        return _page(request, reviewer, cid, status_code=422, error=f"No preview: {exc}.", kept=kept)
    with ctx.db.read() as session:
        c = session.get(Consultation, cid)
    response = render(request, "web/preview.html", {
        "c": c, "body": body, "version": version, "mail": shown,
        "blocking": [p for p in shown["problems"] if not p.overridable],
        "overridable": [p for p in shown["problems"] if p.overridable],
    }, title=f"Preview {c.reference}")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    return response


@router.get("/consultations/{cid}/drafts")
def drafts(cid: int, request: Request, a: int | None = None, b: int | None = None,
           reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    """Every version of the answer; two of them compared line by line."""
    with _ctx(request).db.read() as session:
        c = session.get(Consultation, cid)
        if c is None:
            raise HTTPException(404, f"There is no consultation Q-{cid}.")
        rows = draft_versions.versions(session, cid)
    by_id = {r["draft"].id: r for r in rows}
    if (a is not None and a not in by_id) or (b is not None and b not in by_id):
        raise HTTPException(404, f"No such draft version of Q-{cid}.")
    current = draft_versions.current([r["draft"] for r in rows])
    right = by_id[b]["draft"] if b is not None else current
    left = by_id[a]["draft"] if a is not None else next(
        (r["draft"] for r in rows if right is not None and r["draft"].id != right.id), None)
    compared = draft_versions.diff(left.body if left else "", right.body if right else "",
                                   f"version {left.id}" if left else "nothing",
                                   f"version {right.id}" if right else "nothing")
    return render(request, "web/drafts.html", {
        "c": c, "rows": rows, "left": left, "right": right, "compared": compared,
        "current_id": current.id if current else None, "mine": c.claimed_by_id == reviewer.id,
    }, title=f"Draft versions {c.reference}")


@router.post("/consultations/{cid}/drafts/{did}/restore")
def restore_draft(cid: int, did: int, request: Request, version: int = Form(...),
                  reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    ctx = _ctx(request)
    return _act(request, reviewer, cid, lambda: draft_versions.restore(ctx, cid, reviewer.id, did, version),
                "restored")


@router.post("/consultations/{cid}/request-info")
def request_info(cid: int, request: Request, question: str = Form(""), version: int = Form(...),
                 body: str = Form(""), reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    ctx = _ctx(request)
    if not question.strip():
        return _page(request, reviewer, cid, status_code=422, error="Write the question for the asker.",
                     kept={"body": body, "question": question})
    return _act(request, reviewer, cid,
                lambda: _service().request_info(ctx, cid, reviewer.id, question, version),
                "info_requested", kept={"body": body, "question": question})


@router.post("/consultations/{cid}/reject")
def reject(cid: int, request: Request, reason: str = Form(""), reply_text: str = Form(""),
           send_reply: str = Form(""), version: int = Form(...), body: str = Form(""),
           reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    ctx = _ctx(request)
    kept = {"body": body, "reason": reason, "reply_text": reply_text}
    if not reason.strip():
        return _page(request, reviewer, cid, status_code=422, error="Give a reason for rejecting.", kept=kept)
    reply = reply_text.strip() if send_reply else None
    if send_reply and not reply:
        return _page(request, reviewer, cid, status_code=422, error="Write the reply to send, or untick it.",
                     kept=kept)
    return _act(request, reviewer, cid,
                lambda: _service().reject(ctx, cid, reviewer.id, reason, reply_text=reply, expected_version=version),
                "rejected_replied" if reply else "rejected", kept=kept)


@router.post("/consultations/{cid}/regenerate")
def regenerate(cid: int, request: Request, offline: str = Form(""),
               reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    ctx = _ctx(request)
    return _act(request, reviewer, cid,
                lambda: _service().regenerate(ctx, cid, reviewer.id, offline=bool(offline)), "regenerating")


def _claim_action(request: Request, reviewer: Reviewer, cid: int, call: Callable[[], Any], done: str) -> Response:
    try:
        call()
    except claims.ClaimError as exc:
        return _page(request, reviewer, cid, status_code=409, error=str(exc))
    return RedirectResponse(f"/consultations/{cid}?done={done}", status_code=303)


@router.post("/consultations/{cid}/claim")
def claim(cid: int, request: Request, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    return _claim_action(request, reviewer, cid, lambda: claims.claim(_ctx(request), cid, reviewer.id), "claimed")


@router.post("/consultations/{cid}/unclaim")
def unclaim(cid: int, request: Request, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    return _claim_action(request, reviewer, cid, lambda: claims.unclaim(_ctx(request), cid, reviewer.id), "unclaimed")


@router.post("/consultations/{cid}/reassign")
def reassign(cid: int, request: Request, to_reviewer_id: int = Form(...),
             admin: Reviewer = Depends(require_admin)) -> Response:
    def call():
        ctx = _ctx(request)
        claims.reassign(ctx, cid, admin.id, to_reviewer_id)
        from mailbot.services import notifications

        with ctx.db.session() as session:     # the assignment stands even if the notice cannot be queued
            consultation = session.get(Consultation, cid)
            pokes = notifications.queue_notice(session, ctx.settings, consultation, to_reviewer_id, "assigned",
                                               actor_id=admin.id, by=admin.name)
        dispatch(pokes)                       # after the commit: the sender loads the stored row

    return _claim_action(request, admin, cid, call, "reassigned")


@router.post("/consultations/{cid}/notes")
def add_note(cid: int, request: Request, note: str = Form(""), body: str = Form(""),
             reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    """An internal note (reviewers only, never sent); no claim needed."""
    try:
        notes_service.add(_ctx(request), cid, reviewer.id, note)
    except _service().ConsultationError as exc:
        with _ctx(request).db.read() as session:
            if session.get(Consultation, cid) is None:
                raise HTTPException(404, f"There is no consultation Q-{cid}.")
        return _page(request, reviewer, cid, status_code=422, error=f"Not added: {exc}.",
                     kept={"note": note} | ({"body": body} if body else {}))
    return RedirectResponse(f"/consultations/{cid}?done=note_added#notes", status_code=303)


@router.post("/consultations/{cid}/insert-macro")
def insert_macro(cid: int, request: Request, body: str = Form(""), macro_id: str = Form(""),
                 reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    """Without script: the editor comes back with the filled macro appended (not saved yet)."""
    with _ctx(request).db.read() as session:
        c = session.get(Consultation, cid)
        if c is None:
            raise HTTPException(404, f"There is no consultation Q-{cid}.")
        filled = {str(m["id"]): m["text"] for m in macros.filled_for(session, c, reviewer)}
    if macro_id not in filled:
        return _page(request, reviewer, cid, status_code=422, error="Choose a canned response to insert.",
                     kept={"body": body})
    joined = (body.rstrip() + "\n\n" if body.strip() else "") + filled[macro_id]
    return _page(request, reviewer, cid, kept={"body": joined},
                 error="")


@router.post("/consultations/{cid}/purge-phi")
def purge_phi(cid: int, request: Request, admin: Reviewer = Depends(require_admin)) -> Response:
    """Admins only: redact patient data stored for this consultation (audited)."""
    from mailbot.services import phi

    try:
        phi.purge(_ctx(request), cid, admin.id)
    except _service().ConsultationError as exc:
        return _page(request, admin, cid, status_code=422, error=f"Not done: {exc}.")
    return RedirectResponse(f"/consultations/{cid}?done=phi_purged", status_code=303)


@router.get("/consultations/{cid}/attachments/{aid}")
def attachment(cid: int, aid: int, request: Request, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    with _ctx(request).db.read() as session:
        row = session.exec(select(Attachment).join(InboundMessage, Attachment.inbound_id == InboundMessage.id)
                           .where(Attachment.id == aid, InboundMessage.consultation_id == cid)).first()
    if row is None:
        raise HTTPException(404, "No such attachment on this consultation.")
    if row.data is None:
        raise HTTPException(410, "This attachment was over the size limit and was not kept.")
    media = row.content_type if row.content_type in _PASSTHROUGH_TYPES else "application/octet-stream"
    name = row.filename or f"attachment-{aid}"
    return Response(row.data, media_type=media, headers={
        "Content-Disposition": f"attachment; filename=\"{_ascii_name(name)}\"; filename*=UTF-8''{quote(name, safe='')}",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })


def _ascii_name(name: str) -> str:
    """A plain-ASCII fallback file name for old clients (no quotes, no control characters)."""
    cleaned = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    return cleaned.strip() or "attachment"


@router.get("/consultations/{cid}/audit")
def audit(cid: int, request: Request, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    with _ctx(request).db.read() as session:
        loaded = thread.load(session, cid, audit_limit=None)
    if loaded is None:
        raise HTTPException(404, f"There is no consultation Q-{cid}.")
    events = [{"e": e, "diff": _diff(e.before, e.after), "details": _details(e.detail or {})} for e in loaded.audit]
    return render(request, "web/audit.html", {"c": loaded.consultation, "events": events},
                  title=f"Audit log {loaded.consultation.reference}")


# Audit detail keys as a reviewer reads them; unknown keys fall back to words.
DETAIL_LABELS = {
    "outbound_id": "outgoing mail no.", "inbound_id": "incoming mail no.", "ack_sent": "acknowledgement sent",
    "reply_sent": "reply sent to the asker", "flags": "code problems", "source": "drafted by",
    "llm_failure": "LLM failure", "offline": "offline drafter", "message_id": "Message-ID",
    "reason": "reason", "draft_id": "restored version", "problems": "overridden problems",
    "identifiers": "identifiers redacted", "messages": "messages changed", "attachments": "attachments deleted",
    "drafts": "drafts changed", "audit_texts": "audit texts changed", "subject": "subject changed",
}


def _details(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """``[(label, value)]`` for an audit row's detail, in words; empty values left out."""
    out = []
    for key, value in detail.items():
        if value in ("", None, [], {}):
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif key == "problems" and isinstance(value, list):
            value = "; ".join(str(p.get("reason", p)) if isinstance(p, dict) else str(p) for p in value)
        out.append((DETAIL_LABELS.get(key, key.replace("_", " ")), str(value)))
    return out


def _diff(before: str, after: str) -> list[str]:
    if not before or not after or "\n" not in before + after and len(before) + len(after) < 120:
        return []
    return list(difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=2))
