"""Draft versions: which one the editor shows, comparing two, restoring one.

Every draft -- from the LLM, the offline drafter or a reviewer's save -- is a
row of its own and is never changed, so nothing a reviewer saved is lost.
The *current* draft, the one in the editor, is the newest reviewer-saved
text when there is one: a machine draft made later (after a follow-up from
the asker, or a regenerate) does not replace it; it is shown beside the
editor as a suggestion, with what is new in the thread, and can be compared
and taken over (:func:`restore`) from the page.
"""

from __future__ import annotations

import difflib
from typing import Any, Sequence

from sqlmodel import select

from mailbot.context import Context
from mailbot.models import Consultation, ConsultationState as S, Draft, Reviewer
from mailbot.services import Poke
from mailbot.services.consultation_state import ConsultationError, InvalidTransition, StaleEdit, audit, move

RESTORABLE = (S.AWAITING_REVIEW, S.NEEDS_INFO, S.FAILED)


def current(drafts: Sequence[Draft]) -> Draft | None:
    """The draft the editor shows; ``drafts`` newest first."""
    for draft in drafts:
        if draft.source == "reviewer":
            return draft
    return drafts[0] if drafts else None


def suggestions(drafts: Sequence[Draft]) -> list[Draft]:
    """Machine drafts newer than the reviewer's current text (newest first)."""
    shown = current(drafts)
    if shown is None or shown.source != "reviewer":
        return []
    return [d for d in drafts if d.source != "reviewer" and (d.created_at, d.id or 0) > (shown.created_at,
                                                                                         shown.id or 0)]


def diff(before: str, after: str, before_label: str = "before", after_label: str = "after") -> list[dict[str, str]]:
    """A line diff as rows ``{"kind": "add"|"del"|"same"|"hunk", "text"}`` for the page."""
    rows = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), before_label, after_label,
                                     lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "same")
        rows.append({"kind": kind, "text": line})
    return rows


def restore(ctx: Context, cid: int, reviewer_id: int, draft_id: int, expected_version: int) -> list[Poke]:
    """Make draft ``draft_id`` the current text again (as a new reviewer
    version; the versions in between stay)."""
    with ctx.db.session() as session:
        old = session.get(Draft, draft_id)
        if old is None or old.consultation_id != cid:
            raise ConsultationError(f"draft {draft_id} is not a version of Q-{cid}")
        reviewer = session.get(Reviewer, reviewer_id)
        consultation = session.get(Consultation, cid)
        if reviewer is None or not reviewer.active or consultation is None:
            raise ConsultationError("unknown reviewer or consultation")
        if consultation.version != expected_version:
            raise StaleEdit(f"Q-{cid} was changed by someone else; reload to see the changes")
        if consultation.state not in RESTORABLE:
            raise InvalidTransition(f"cannot restore a draft of Q-{cid} while it is {consultation.state}")
        before = session.exec(select(Draft).where(Draft.consultation_id == cid, Draft.source == "reviewer")
                              .order_by(Draft.id.desc())).first()
        if not move(session, cid, RESTORABLE, consultation.state, expected_version=expected_version):
            raise StaleEdit(f"Q-{cid} was changed by someone else just now; reload to see the changes")
        session.add(Draft(consultation_id=cid, source="reviewer", body=old.body, cited_codes=old.cited_codes,
                          created_by_id=reviewer_id))
        audit(session, cid, reviewer.email, "draft_restored", before=before.body if before else "",
              after=old.body, draft_id=draft_id)
    return []


def versions(session, cid: int) -> list[dict[str, Any]]:
    """Every version of the answer, newest first, with who made it."""
    rows = session.exec(select(Draft).where(Draft.consultation_id == cid)
                        .order_by(Draft.created_at.desc(), Draft.id.desc())).all()
    names = {r.id: r.name for r in session.exec(select(Reviewer)).all()} if rows else {}
    return [{"draft": d, "by": names.get(d.created_by_id, "") if d.created_by_id else d.source} for d in rows]
