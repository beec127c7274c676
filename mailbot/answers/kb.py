"""Adapters over the code knowledge base (``mailbot.codes``): the engine's only way in.

Small functions with plain-dict results over the code-knowledge APIs: lookup
cards (with the ICD-10-CM history), :func:`mailbot.codes.edits.check` (NCCI
PTP tables by setting, MUEs, the I/OCE add-on lists),
:func:`mailbot.codes.dxedits.diagnosis_edits` (age / sex / manifestation /
Excludes1 / code-first and use-additional conflicts) and, through
:mod:`mailbot.answers.successors`, the history's successors.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from mailbot.models.codes import CodeEntry, RvuEntry

SYSTEM_NAMES = {"icd10cm": "ICD-10-CM", "cpt": "CPT", "hcpcs": "HCPCS Level II", "modifier": "modifier"}
OK_STATUSES = frozenset({"ok", "unlicensed_descriptor"})


class KB:
    """The knowledge base for one question: a session and the date of service."""

    def __init__(self, session: Session, on: date) -> None:
        self.session = session
        self.on = on
        self._cards: dict[str, dict[str, Any]] = {}
        self._catalogue = None

    @property
    def catalogue(self):
        """The loaded code-set versions, read once per question (not once per fact that cites one)."""
        if self._catalogue is None:
            from mailbot.codes.catalogue import Catalogue

            self._catalogue = Catalogue(self.session)
        return self._catalogue

    # -- cards ------------------------------------------------------------
    def card(self, code: str) -> dict[str, Any]:
        """The lookup card of ``code`` on the date of service (cached)."""
        if code not in self._cards:
            from mailbot.codes.lookup import lookup

            self._cards[code] = lookup(self.session, [code], on=self.on)[0].to_dict()
        return self._cards[code]

    def reportable(self, code: str) -> bool:
        card = self.card(code)
        return bool(card.get("found")) and card.get("status") in OK_STATUSES

    def title(self, code: str) -> str:
        return self.card(code).get("title") or ""

    # -- rows -------------------------------------------------------------
    def rows(self, system: str, code: str) -> list[CodeEntry]:
        return list(self.session.execute(select(CodeEntry).where(
            CodeEntry.system == system, CodeEntry.code == code).order_by(CodeEntry.valid_from)).scalars())

    def children(self, code: str, system: str = "icd10cm") -> list[CodeEntry]:
        """Direct children valid on the date (ICD-10-CM hierarchy)."""
        return list(self.session.execute(select(CodeEntry).where(
            CodeEntry.system == system, CodeEntry.parent == code, CodeEntry.valid_from <= self.on,
            or_(CodeEntry.valid_to.is_(None), CodeEntry.valid_to >= self.on)).order_by(CodeEntry.code)).scalars())

    def billable_under(self, code: str, limit: int = 60) -> list[CodeEntry]:
        """Billable descendants valid on the date, breadth first."""
        out: list[CodeEntry] = []
        frontier = [code]
        while frontier and len(out) < limit:
            nxt: list[str] = []
            for parent in frontier:
                for child in self.children(parent):
                    (out if child.billable else []).append(child)
                    if not child.billable:
                        nxt.append(child.code)
            frontier = nxt
        return out[:limit]

    def in_range(self, start: str, end: str, system: str = "icd10cm") -> list[CodeEntry]:
        """Billable codes from ``start`` to ``end`` inclusive (``end`` also covers its subcodes)."""
        return list(self.session.execute(select(CodeEntry).where(
            CodeEntry.system == system, CodeEntry.billable.is_(True), CodeEntry.code >= start,
            or_(CodeEntry.code <= end, CodeEntry.code.like(end + "%")), CodeEntry.valid_from <= self.on,
            or_(CodeEntry.valid_to.is_(None), CodeEntry.valid_to >= self.on)).order_by(CodeEntry.code)
            .limit(200)).scalars())

    def hcpcs_titled(self, words: list[str], limit: int = 40) -> list[CodeEntry]:
        """HCPCS codes valid on the date whose descriptor holds every word."""
        query = select(CodeEntry).where(CodeEntry.system == "hcpcs", CodeEntry.valid_from <= self.on,
                                        or_(CodeEntry.valid_to.is_(None), CodeEntry.valid_to >= self.on))
        for word in words:
            query = query.where(CodeEntry.title.ilike(f"%{word}%"))
        return list(self.session.execute(query.order_by(CodeEntry.code).limit(limit)).scalars())

    # -- fee schedule -----------------------------------------------------
    def rvu(self, code: str) -> dict[str, Any] | None:
        """The Physician Fee Schedule row (no modifier) of ``code``: status, global days, indicators."""
        row = self.session.execute(select(RvuEntry).where(RvuEntry.code == code, RvuEntry.modifier == "")
                                   .order_by(RvuEntry.version_id.desc())).scalars().first()
        if row is None:
            return None
        return {"status": row.status, "global_days": row.global_days, "indicators": dict(row.indicators or {}),
                "version": self.catalogue.name(row.version_id) or "PFS"}

    # -- search and checks ------------------------------------------------
    def search(self, query: str, system: str | None = None, limit: int = 8) -> list[dict[str, Any]]:
        from mailbot.codes.search import SearchError, search

        try:
            return [hit.to_dict() for hit in search(self.session, query, system=system, limit=limit)]
        except SearchError:
            return []

    def check(self, codes: list[str], setting: str = "practitioner") -> dict[str, Any]:
        from mailbot.codes.edits import CheckError, check

        try:
            return check(self.session, codes, on=self.on, setting=setting, catalogue=self.catalogue).to_dict()
        except CheckError as exc:
            return {"pairs": [], "codes": [], "notes": [str(exc)]}

    def addon_primaries(self, code: str) -> list[str]:
        """Primary codes of an add-on code on the date, from the shipped I/OCE add-on lists
        (empty when the code has no list there)."""
        from mailbot.codes.edits import addon_flags

        flags = addon_flags(self.session, self.catalogue, [code], self.on)
        return next((list(f["primaries"]) for f in flags if f["code"] == code), [])

    def is_addon(self, code: str) -> bool:
        """Listed as an add-on code in the shipped I/OCE add-on lists on the date."""
        from mailbot.codes.edits import addon_flags

        return any(f["code"] == code for f in addon_flags(self.session, self.catalogue, [code], self.on))

    def diagnosis_edits(self, codes: list[str], age: int | None = None, sex: str = "") -> list[dict[str, Any]]:
        """Conflicts among ICD-10-CM ``codes`` (first = first-listed), each with its source and version."""
        from mailbot.codes.dxedits import diagnosis_edits

        sex_code = {"male": "M", "female": "F"}.get((sex or "").lower(), (sex or "").upper()[:1]) or None
        return [c.to_dict() for c in diagnosis_edits(self.session, codes, self.on, age=age, sex=sex_code)]

    def version(self, code: str) -> str:
        return str(self.card(code).get("version") or "")
