"""Purging patient data from a consultation (an admin action, audited).

Coders are asked not to mail patient identifiers, yet they do.  A purge
keeps the consultation usable -- the coding question, the codes, the answer
-- and replaces every identifier the redactor finds with its ``[KIND]``
placeholder in what we store: the subject, the asker's messages (text and
HTML; the raw bytes are emptied, so a replay of them is no longer possible),
the drafts and the audit texts.  Attachments' bytes are deleted.  The audit
row records what was changed, counted, never the removed text itself.
"""

from __future__ import annotations

import re

from sqlalchemy import update
from sqlmodel import select

from mailbot.context import Context
from mailbot.drafting.redact import redact
from mailbot.models import Attachment, AuditEvent, Consultation, Draft, InboundMessage, Reviewer
from mailbot.services.consultation_state import ConsultationError, audit


def _names_in(texts: list[str]) -> set[str]:
    """Name words the redactor found in the asker's messages: a draft or an
    audit text may repeat "John Smith" without the cue that gave it away."""
    words: set[str] = set()
    for text in texts:
        result = redact(text or "")
        for span in result.spans:
            if span.kind == "NAME":
                words.update(w for w in re.findall(r"[A-Za-z'’-]{2,}", text[span.start:span.end]))
    return words


def _cleaner(names: set[str]):
    known = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b",
                       re.I) if names else None

    def clean(text: str) -> tuple[str, int]:
        if not text:
            return text, 0
        result = redact(text)
        out, found = result.text, len(result.spans)
        if known is not None:
            out, more = known.subn("[NAME]", out)
            found += more
        return out, found

    return clean


def purge(ctx: Context, cid: int, admin_id: int) -> dict[str, int]:
    """Redact patient data stored for consultation ``cid``; returns counts."""
    counts = {"subject": 0, "messages": 0, "attachments": 0, "drafts": 0, "audit_texts": 0, "identifiers": 0}
    with ctx.db.session() as session:
        consultation = session.get(Consultation, cid)
        admin = session.get(Reviewer, admin_id)
        if consultation is None:
            raise ConsultationError(f"consultation Q-{cid} does not exist")
        if admin is None or not admin.active:
            raise ConsultationError("unknown or disabled account")
        messages = session.exec(select(InboundMessage).where(InboundMessage.consultation_id == cid)).all()
        _clean = _cleaner(_names_in([consultation.subject] + [m.full_text or m.text or "" for m in messages]
                                    + [m.subject or "" for m in messages]))
        subject, found = _clean(consultation.subject)
        counts["subject"], counts["identifiers"] = int(found > 0), found
        for m in messages:
            changed = 0
            for name in ("subject", "text", "full_text"):
                value, found = _clean(getattr(m, name) or "")
                setattr(m, name, value)
                changed += found
            if m.html:
                m.html = ""           # formatted copy: the text part above is the record
                changed += 1
            if m.raw:
                m.raw = b""
                changed += 1
            counts["identifiers"] += changed
            counts["messages"] += int(changed > 0)
            session.add(m)
        ids = [m.id for m in messages]
        if ids:
            for a in session.exec(select(Attachment).where(Attachment.inbound_id.in_(ids))).all():
                if a.data is not None:
                    a.data = None
                    counts["attachments"] += 1
                    session.add(a)
        for d in session.exec(select(Draft).where(Draft.consultation_id == cid)).all():
            body, found = _clean(d.body)
            if found:
                d.body = body
                counts["drafts"] += 1
                counts["identifiers"] += found
                session.add(d)
        for e in session.exec(select(AuditEvent).where(AuditEvent.consultation_id == cid)).all():
            before, b = _clean(e.before)
            after, a = _clean(e.after)
            if a or b:
                e.before, e.after = before, after
                counts["audit_texts"] += 1
                counts["identifiers"] += a + b
                session.add(e)
        session.exec(update(Consultation).where(Consultation.id == cid).values(
            subject=subject, has_phi=False, version=Consultation.version + 1))
        audit(session, cid, admin.email, "phi_purged", **counts)
    return counts
