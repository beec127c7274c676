"""Alphabetic Index paths for a code, for the drafter and the reviewer.

``index_paths(session, "S52.501A")`` -> ``["Index: Fracture, radius, distal
end -> S52.50-", ...]``: the index lines (and drug / neoplasm table cells)
that lead to the code or to an ancestor written with a dash.  Empty when the
operator has not imported the CMS index files (``mailbot codes import
--index ...``).
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlmodel import Session

from mailbot.models.code_index import IndexTerm

LABELS = {"index": "Index", "drug": "Table of Drugs and Chemicals", "neoplasm": "Neoplasm Table"}


def _ancestors(code: str) -> list[str]:
    """"S52.501A" -> S52.501A and the dashed forms of each ancestor: S52-, S52.-, S52.5-, S52.50-, ..."""
    out = [code]
    for n in range(3, len(code) + 1):
        stem = code[:n]
        out += [stem + "-", stem.rstrip(".") + ".-"] if not stem.endswith(".") else [stem + "-"]
    return list(dict.fromkeys(out))


def index_paths(session: Session, code: str, limit: int = 8) -> list[str]:
    """Readable index paths leading to ``code`` (most specific first)."""
    code = code.strip().upper()
    if not code:
        return []
    keys = _ancestors(code)
    rows = session.execute(
        select(IndexTerm.kind, IndexTerm.path, IndexTerm.code, IndexTerm.column)
        .where(or_(IndexTerm.code.in_(keys)))
    ).all()
    # the exact code first, then longer (more specific) dashed codes, then shorter paths
    rows.sort(key=lambda r: (r.code != code, -len(r.code), len(r.path), r.path))
    out = []
    for kind, path, found, column in rows[:limit]:
        where = f"{path}, {column}" if column else path
        out.append(f"{LABELS.get(kind, kind)}: {where} -> {found}")
    return out
