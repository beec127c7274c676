"""Quarantine: keep what could not be handled, with its reason, for a human."""

from __future__ import annotations

from sqlmodel import Session

from mailbot.models import QuarantineItem


def quarantine(session: Session, *, kind: str, ref_id: int | None, reason: str,
               stage: str = "", detail: str = "") -> QuarantineItem:
    """Record a quarantine row in the caller's transaction."""
    item = QuarantineItem(kind=kind, ref_id=ref_id, stage=stage, reason=reason[:2000], detail=detail)
    session.add(item)
    session.flush()
    return item
