"""The review queue: what waits for a reviewer, oldest first.

One page is a fixed handful of indexed queries (the page of ids, those rows
with their assignee joined in, the per-state counts, the total when it is
cheap to count) -- never one query per row -- so it stays fast with ten
thousand pending items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import String, cast, func, or_
from sqlmodel import select

from mailbot.models import Consultation, ConsultationState, Reviewer, utcnow
from mailbot.services import claims, search_index
from mailbot.services.metrics import state_counts
from reviewers.auth import require_reviewer
from reviewers.pages import render

router = APIRouter()

# Values as the knowledge base names systems (Consultation.code_systems), with labels.
CODE_SYSTEMS = {"icd10cm": "ICD-10-CM", "cpt": "CPT", "hcpcs": "HCPCS"}
_ID = re.compile(r"^\s*(?:q-?)?(\d{1,12})\s*$", re.I)


@dataclass
class Filters:
    state: str = ConsultationState.AWAITING_REVIEW.value   # a state, or "all"
    assignee: str = ""                                     # "", "me", "none" or a reviewer id
    system: str = ""
    flagged: bool = False
    q: str = ""
    page: int = 1

    @classmethod
    def from_request(cls, request: Request) -> "Filters":
        p = request.query_params
        state = p.get("state", cls.state)
        if state != "all" and state not in {s.value for s in ConsultationState}:
            state = cls.state
        assignee = p.get("assignee", "")
        if assignee not in ("", "me", "none") and not assignee.isdigit():
            assignee = ""
        system = p.get("system", "")
        try:
            page = max(1, min(int(p.get("page", "1")), 100_000))
        except ValueError:
            page = 1
        return cls(state=state, assignee=assignee, system=system if system in CODE_SYSTEMS else "",
                   flagged=p.get("flagged") in ("1", "on", "true"), q=_searchable(p.get("q", "")), page=page)

    def query_string(self, **changes) -> str:
        from urllib.parse import urlencode

        values = {"state": self.state, "assignee": self.assignee, "system": self.system,
                  "flagged": "1" if self.flagged else "", "q": self.q, "page": str(self.page)}
        values.update({k: str(v) for k, v in changes.items()})
        return urlencode({k: v for k, v in values.items() if v and not (k == "page" and v == "1")})


def _searchable(q: str) -> str:
    """The search text without control characters: SQLite cuts a pattern at a
    NUL (so "\x00" matched every row) and PostgreSQL refuses NUL outright."""
    return "".join(ch for ch in q if ch >= " " or ch == "\t").strip()[:200]


def _conditions(filters: Filters, reviewer_id: int, fulltext=None) -> list:
    where = []
    if filters.state != "all":
        where.append(Consultation.state == filters.state)
    if filters.assignee == "me":
        where.append(Consultation.claimed_by_id == reviewer_id)
    elif filters.assignee == "none":
        where.append(Consultation.claimed_by_id.is_(None))
    elif filters.assignee:
        where.append(Consultation.claimed_by_id == int(filters.assignee))
    if filters.system:
        # code_systems is a JSON list; its text form contains the quoted name on both databases.
        where.append(cast(Consultation.code_systems, String).like(f'%"{filters.system}"%'))
    if filters.flagged:
        where.append(Consultation.flags > 0)
    if filters.q:
        by_id = _ID.match(filters.q)
        if by_id:
            # "Q-123" is a reference; a bare number may also be a code (20610) in the text.
            either = [Consultation.id == int(by_id.group(1))]
            if fulltext is not None:
                either.append(Consultation.id.in_(fulltext))
            where.append(or_(*either))
        else:
            pattern = "%" + filters.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            either = [func.lower(Consultation.subject).like(pattern, escape="\\"),
                      func.lower(Consultation.asker_email).like(pattern, escape="\\"),
                      func.lower(Consultation.asker_name).like(pattern, escape="\\")]
            if fulltext is not None:   # questions, drafts, answers and cited codes
                either.append(Consultation.id.in_(fulltext))
            where.append(or_(*either))
    return where


def _indexed_only(filters: Filters) -> bool:
    """True when every condition is served by an index, so counting is cheap.
    Other filters (code system, flags, words) would make an exact count a
    scan of the whole queue; their pages show "next" without a total."""
    return not (filters.system or filters.flagged or filters.q)


@router.get("/queue")
def queue(request: Request, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    filters = Filters.from_request(request)
    settings = request.app.state.ctx.settings
    size = settings.web.page_size
    fulltext = None
    if filters.q and not re.match(r"^\s*q-?\d", filters.q, re.I):
        with request.app.state.ctx.db.session() as session:
            search_index.refresh(session)          # derived index: only what changed since last time
            fulltext = search_index.matching_ids(session, filters.q)
    where = _conditions(filters, reviewer.id, fulltext)
    with request.app.state.ctx.db.read() as session:
        # Page through ids first: with ix_consultation_queue (state, waiting_since, id)
        # that walk never touches the table, so a deep page costs little more than the first.
        # One extra id tells whether there is a next page.
        page_ids = (select(Consultation.id).where(*where)
                    .order_by(Consultation.waiting_since, Consultation.id)
                    .offset((filters.page - 1) * size).limit(size + 1))
        rows = session.exec(
            select(Consultation, Reviewer.name)
            .outerjoin(Reviewer, Consultation.claimed_by_id == Reviewer.id)
            .where(Consultation.id.in_(page_ids.scalar_subquery()))
            .order_by(Consultation.waiting_since, Consultation.id)
        ).all()
        total = (session.exec(select(func.count()).select_from(Consultation).where(*where)).one()
                 if _indexed_only(filters) else None)
        counts = state_counts(session)
        reviewers = session.exec(select(Reviewer.id, Reviewer.name).where(Reviewer.active.is_(True))
                                 .order_by(Reviewer.name)).all()
    has_next, rows = len(rows) > size, rows[:size]
    now = utcnow()
    sla = timedelta(hours=settings.web.sla_hours)
    items = [{"c": c, "assignee": name, "late": now - c.waiting_since > sla,
              "due_soon": not (now - c.waiting_since > sla) and now - c.waiting_since > sla * 0.75}
             for c, name in rows]
    first = (filters.page - 1) * size + 1 if rows else 0
    return render(request, "web/queue.html", {
        "items": items, "filters": filters, "total": total, "has_next": has_next,
        "pages": max(1, -(-total // size)) if total is not None else None,
        "first": first, "last": first + len(rows) - 1 if rows else 0,
        "counts": counts, "states": [s.value for s in ConsultationState],
        "systems": CODE_SYSTEMS, "reviewers": reviewers, "sla_hours": settings.web.sla_hours,
    }, title="Queue")


@router.post("/queue/next")
def take_next(request: Request, reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    """Claim the oldest unclaimed item and open it."""
    cid = claims.claim_next(request.app.state.ctx, reviewer.id)
    if cid is None:
        return RedirectResponse("/queue?done=queue_empty", status_code=303)
    return RedirectResponse(f"/consultations/{cid}?done=claimed", status_code=303)
