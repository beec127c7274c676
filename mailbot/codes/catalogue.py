"""Which code-set versions are loaded, and how answers cite them.

Every fact the knowledge base returns names the version it came from, e.g.
``ICD-10-CM FY2027`` for a date of service on or after 2026-10-01 and
``ICD-10-CM FY2026 (...)`` before it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlmodel import Session

from mailbot.models.codes import CodeSetVersion

LABELS = {"icd10cm": "ICD-10-CM", "hcpcs": "HCPCS Level II", "pfs": "PFS RVU", "ncci": "NCCI PTP",
          "mue": "MUE", "cpt": "CPT (licensed)", "modifier": "modifier", "addon": "Add-on code lists",
          "icd10cm_edits": "I/OCE ICD-10-CM edits", "ms_drg": "MS-DRG", "cms_hcc": "CMS-HCC"}
SETTING_LABELS = {"practitioner": "practitioner", "hospital": "hospital outpatient"}


class Catalogue:
    """The version rows of one database, loaded once per call site."""

    def __init__(self, session: Session | None, rows: list[CodeSetVersion] | None = None) -> None:
        if rows is None:
            rows = list(session.execute(select(CodeSetVersion).order_by(CodeSetVersion.id)).scalars())
        self.rows = rows
        self.by_id = {v.id: v for v in self.rows}

    @classmethod
    def detached(cls, session: Session) -> "Catalogue":
        """A catalogue of plain copies, safe to keep after the session ends (cached knowledge)."""
        rows = session.execute(select(CodeSetVersion).order_by(CodeSetVersion.id)).scalars()
        return cls(None, [CodeSetVersion(**v.model_dump()) for v in rows])

    def fiscal_version(self, kind: str, on: date):
        """The version row of ``kind`` whose effective dates hold ``on`` (None when none does)."""
        dated = [v for v in self.rows if v.kind == kind and v.effective_from and v.effective_from <= on
                 and (v.effective_to is None or v.effective_to >= on)]
        return dated[-1] if dated else None

    def label(self, kind: str) -> str:
        return LABELS.get(kind, kind)

    def name(self, version_id: int | None) -> str | None:
        v = self.by_id.get(version_id)
        if v is None:
            return None
        if v.setting:  # "NCCI PTP, hospital outpatient, April 2026"
            return f"{self.label(v.kind)}, {SETTING_LABELS.get(v.setting, v.setting)}, {v.version}"
        return f"{self.label(v.kind)} {v.version}"

    def has(self, kind: str, setting: str | None = None) -> bool:
        return any(v.kind == kind and (setting is None or v.setting == setting) for v in self.rows)

    def name_of(self, kind: str, setting: str = "") -> str | None:
        match = [v for v in self.rows if v.kind == kind and v.setting == setting]
        return self.name(match[-1].id) if match else None

    def cite(self, system: str, on: date, fallback_id: int | None) -> str | None:
        """The version in force on ``on`` for ``system`` (ICD-10-CM has dated versions)."""
        kind = "hcpcs" if system == "modifier" else system
        own = self.by_id.get(fallback_id)
        if own is not None and own.kind == kind and own.effective_from and own.effective_from <= on \
                and (own.effective_to is None or own.effective_to >= on) \
                and not any(v.kind == kind and v.effective_from and own.effective_from < v.effective_from <= on
                            and v.source.startswith("pyoce") == own.source.startswith("pyoce") for v in self.rows):
            return self.name(own.id)
        dated = [v for v in self.rows if v.kind == kind and v.effective_from and v.effective_from <= on
                 and (v.effective_to is None or v.effective_to >= on)]
        if dated:
            return self.name(dated[-1].id)
        return self.name(fallback_id)

    def staleness(self, kind: str, on: date) -> str | None:
        """A warning when ``on`` lies past the newest imported release of an annual set."""
        if kind not in ("hcpcs", "pfs"):
            return None
        match = [v for v in self.rows if v.kind == kind]
        if not match or not match[-1].effective_from:
            return None
        newest = match[-1]
        if on.year > newest.effective_from.year:
            return (f"{self.name(newest.id)} is the newest imported release; codes added, changed or ended "
                    f"after it are not known for {on.isoformat()}")
        return None

    def public_cpt_version(self) -> str:
        parts = [self.name_of(k, s) for k, s in (("pfs", ""), ("ncci", "practitioner"), ("mue", "practitioner"))]
        return "public CMS files: " + ", ".join(p for p in parts if p)


def versions(session: Session) -> list[CodeSetVersion]:
    """Every loaded code-set version row (system/kind, version, dates, source, counts, checksum)."""
    return Catalogue(session).rows


def version_table(session: Session, today: date | None = None) -> list[dict]:
    """Every loaded version as a row for ``mailbot codes versions`` and the admin page:
    set, release, setting, source, effective dates, whether it is in force
    today, row count, the other counts, checksum and import time.  Sorted by
    set, then effective date (ICD-10-CM FY2016 ... FY2027)."""
    today = today or date.today()
    rows = []
    for v in versions(session):
        if v.effective_from is None:
            state = "undated"
        elif v.effective_from > today:
            state = "future"
        elif v.effective_to is not None and v.effective_to < today:
            state = "past"
        else:
            state = "in force"
        counts = ", ".join(f"{k} {val:,}" if isinstance(val, int) else f"{k} {val}"
                           for k, val in (v.counts or {}).items() if not isinstance(val, dict))
        rows.append({"set": LABELS.get(v.kind, v.kind), "kind": v.kind, "version": v.version,
                     "setting": v.setting or "", "source": v.source, "effective_from": v.effective_from,
                     "effective_to": v.effective_to, "state": state, "row_count": v.row_count,
                     "counts": counts, "checksum": v.checksum, "imported_at": v.imported_at})
    rows.sort(key=lambda r: (r["kind"], r["setting"], r["effective_from"] or date.min, r["version"]))
    return rows
