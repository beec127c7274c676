"""Canned responses (macros): admins write them, reviewers insert them.

A macro's text may hold variables in braces, filled from the consultation
when a reviewer inserts it; the variables are a fixed table (``VARIABLES``)
so an admin's typo is refused when the macro is saved, not sent to an asker
as ``{asker_nmae}``.  Filling is plain substitution -- no template language,
so a macro cannot reach anything but these values.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.models import Consultation, Draft, Macro, Reviewer, utcnow
from mailbot.services.consultation_state import ConsultationError

VARIABLES = {
    "asker_name": "the asker's name as they sign (else \"there\")",
    "asker_first_name": "the first word of the asker's name (else \"there\")",
    "reference": "the consultation's reference, e.g. Q-1042",
    "codes": "the codes the current draft cites, comma-separated",
    "reviewer": "your name",
    "reviewer_credential": "your credential (CPC, CCS ...)",
}
_VARIABLE = re.compile(r"\{([a-z_]+)\}")
MAX_NAME, MAX_BODY = 120, 20_000


def unknown_variables(body: str) -> list[str]:
    return sorted({name for name in _VARIABLE.findall(body) if name not in VARIABLES})


def save(ctx: Context, admin_id: int, name: str, body: str, macro_id: int | None = None) -> int:
    """Create or update a macro; returns its id.  Raises ConsultationError with the reason."""
    name, body = name.strip(), body.strip()
    if not name or not body:
        raise ConsultationError("a macro needs a name and a text")
    if len(name) > MAX_NAME or len(body) > MAX_BODY:
        raise ConsultationError(f"a macro's name is at most {MAX_NAME} characters and its text {MAX_BODY}")
    unknown = unknown_variables(body)
    if unknown:
        raise ConsultationError("unknown variable(s) " + ", ".join("{" + u + "}" for u in unknown)
                                + "; use " + ", ".join("{" + v + "}" for v in VARIABLES))
    with ctx.db.session() as session:
        clash = session.exec(select(Macro).where(Macro.name == name)).first()
        if clash is not None and clash.id != macro_id:
            raise ConsultationError(f"there is already a macro named {name!r}")
        row = session.get(Macro, macro_id) if macro_id else Macro(name=name, body=body)
        if row is None:
            raise ConsultationError(f"macro {macro_id} does not exist")
        row.name, row.body, row.active, row.updated_by_id, row.updated_at = name, body, True, admin_id, utcnow()
        session.add(row)
        session.flush()
        return row.id


def retire(ctx: Context, macro_id: int) -> None:
    with ctx.db.session() as session:
        row = session.get(Macro, macro_id)
        if row is None:
            raise ConsultationError(f"macro {macro_id} does not exist")
        row.active = False
        session.add(row)


def values_for(session: Session, consultation: Consultation, reviewer: Reviewer) -> dict[str, str]:
    draft = session.exec(select(Draft).where(Draft.consultation_id == consultation.id)
                         .order_by(Draft.id.desc())).first()
    codes = [str(c.get("code")) for c in (draft.cited_codes if draft else []) if isinstance(c, dict) and c.get("code")]
    name = (consultation.asker_name or "").strip()
    return {"asker_name": name or "there", "asker_first_name": name.split()[0] if name else "there",
            "reference": consultation.reference, "codes": ", ".join(dict.fromkeys(codes)),
            "reviewer": reviewer.name, "reviewer_credential": reviewer.credential or ""}


def fill(body: str, values: dict[str, Any]) -> str:
    return _VARIABLE.sub(lambda m: str(values.get(m.group(1), m.group(0))), body)


def filled_for(session: Session, consultation: Consultation, reviewer: Reviewer) -> list[dict[str, Any]]:
    """Every active macro, filled for this consultation and reviewer."""
    values = values_for(session, consultation, reviewer)
    return [{"id": m.id, "name": m.name, "text": fill(m.body, values)}
            for m in session.exec(select(Macro).where(Macro.active.is_(True)).order_by(Macro.name)).all()]
