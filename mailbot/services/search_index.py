"""Full-text search over consultations: the questions, every draft (the sent
answer is the last one), the subject, the asker and the codes cited.

Two engines, one interface (:func:`refresh`, :func:`matching_ids`):

- SQLite (embedded): an FTS5 table ``consultation_fts`` (porter stemming),
  rowid = consultation id;
- PostgreSQL (scaled): a table ``consultation_search`` holding a
  ``tsvector`` (``simple`` configuration: every word counts, stop words too,
  as in the SQLite index) with a GIN index.

The index is derived data, not part of the schema: created on first use
and brought up to date before each search for exactly the consultations
whose ``updated_at`` differs from the stamp stored with their row (every
move, saved draft and attached reply updates it), so it can never serve a
stale answer and can be dropped at any time.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Integer, text
from sqlmodel import Session, select

from mailbot.models import Consultation, Draft, InboundMessage

BATCH = 500
_WORD = re.compile(r"[\w.]+(?:-[\w]+)?", re.UNICODE)

SQLITE_DDL = ("CREATE VIRTUAL TABLE IF NOT EXISTS consultation_fts USING fts5("
              "document, stamp UNINDEXED, tokenize='porter unicode61')",)
POSTGRES_DDL = (
    "CREATE TABLE IF NOT EXISTS consultation_search (consultation_id integer PRIMARY KEY, "
    "document tsvector NOT NULL, stamp timestamptz)",
    "CREATE INDEX IF NOT EXISTS ix_consultation_search_document ON consultation_search USING gin (document)",
)


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def ensure(session: Session) -> None:
    for ddl in SQLITE_DDL if _sqlite(session) else POSTGRES_DDL:
        session.exec(text(ddl))


def _stale(session: Session) -> list[tuple[int, Any]]:
    if _sqlite(session):
        sql = ("SELECT c.id, c.updated_at FROM consultation c LEFT JOIN consultation_fts f ON f.rowid = c.id "
               "WHERE f.rowid IS NULL OR f.stamp IS NOT c.updated_at LIMIT :n")
    else:
        sql = ("SELECT c.id, c.updated_at FROM consultation c LEFT JOIN consultation_search f "
               "ON f.consultation_id = c.id WHERE f.consultation_id IS NULL "
               "OR f.stamp IS DISTINCT FROM c.updated_at LIMIT :n")
    return [(row[0], row[1]) for row in session.exec(text(sql).bindparams(n=BATCH)).all()]


def documents(session: Session, ids: list[int]) -> dict[int, str]:
    """The searchable text of each consultation in ``ids``."""
    parts: dict[int, list[str]] = {i: [] for i in ids}
    for c in session.exec(select(Consultation).where(Consultation.id.in_(ids))).all():
        parts[c.id] += [c.reference, c.subject or "", c.asker_name or "", c.asker_email or ""]
    for m in session.exec(select(InboundMessage.consultation_id, InboundMessage.subject, InboundMessage.full_text,
                                 InboundMessage.text)
                          .where(InboundMessage.consultation_id.in_(ids))).all():
        parts[m.consultation_id] += [m.subject or "", m.full_text or m.text or ""]
    for d in session.exec(select(Draft.consultation_id, Draft.body, Draft.cited_codes)
                          .where(Draft.consultation_id.in_(ids))).all():
        codes = " ".join(str(c.get("code", "")) for c in (d.cited_codes or []) if isinstance(c, dict))
        parts[d.consultation_id] += [d.body or "", codes]
    return {i: "\n".join(p for p in texts if p) for i, texts in parts.items()}


def refresh(session: Session) -> int:
    """Index every consultation changed since it was last indexed; returns how many."""
    ensure(session)
    done = 0
    while True:
        stale = _stale(session)
        if not stale:
            return done
        docs = documents(session, [cid for cid, _ in stale])
        for cid, stamp in stale:
            if _sqlite(session):
                session.exec(text("DELETE FROM consultation_fts WHERE rowid = :id").bindparams(id=cid))
                session.exec(text("INSERT INTO consultation_fts (rowid, document, stamp) VALUES (:id, :doc, :stamp)")
                             .bindparams(id=cid, doc=docs[cid], stamp=stamp))
            else:
                session.exec(text(
                    "INSERT INTO consultation_search (consultation_id, document, stamp) "
                    "VALUES (:id, to_tsvector('simple', :doc), :stamp) ON CONFLICT (consultation_id) DO UPDATE "
                    "SET document = EXCLUDED.document, stamp = EXCLUDED.stamp")
                    .bindparams(id=cid, doc=docs[cid], stamp=stamp))
        done += len(stale)
        if len(stale) < BATCH:
            return done


def fts5_query(words: str) -> str:
    """User words as an FTS5 query: every word (or code) must appear; each is
    quoted, so FTS5 operators typed by a user are plain text."""
    terms = [w.replace('"', "") for w in _WORD.findall(words)]
    return " AND ".join(f'"{t}"' for t in terms if t.strip(".-"))


def matching_ids(session: Session, words: str):
    """A subquery of the consultation ids whose text matches ``words`` (all
    of them), for ``Consultation.id.in_(...)``; None when there is nothing
    to search for."""
    if _sqlite(session):
        query = fts5_query(words)
        if not query:
            return None
        return (text("SELECT rowid AS id FROM consultation_fts WHERE consultation_fts MATCH :fts")
                .bindparams(fts=query).columns(id=Integer))
    if not _WORD.search(words):
        return None
    return (text("SELECT consultation_id AS id FROM consultation_search "
                 "WHERE document @@ plainto_tsquery('simple', :words)").bindparams(words=words).columns(id=Integer))
