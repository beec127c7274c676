"""The public CMS facts and diagnosis flags of every code, in memory.

Issue 16: after :mod:`.knowledge` took the code rows out of the per-card
queries, a LOOKUP card still asked the database, per code, for its RVU rows,
its MUE rows, four NCCI edit counts (1.6 million hospital PTP rows: counting
a busy code's edits on a date meant fetching thousands of rows, hundreds of
milliseconds per card) and, per ICD-10-CM card, its edit flags.

:class:`Facts` holds all of that once per database and code-set generation:
RVU, MUE and ICD-10-CM ``code_flag`` rows as plain rows by code, and the NCCI
edits pre-aggregated by the database into "n edits of this code in this
column, effective from .. deleted on .." (about 100k groups), so a count on a
date is a sum over a few groups.  It lives in the cached
:class:`~.knowledge.Knowledge` (``extra``), so a new import -- which changes
the knowledge's generation -- drops it with the rows.

:func:`facts_of` never blocks a card: the first caller starts the build in a
background thread (seconds, mostly the NCCI aggregation) and gets ``None``;
callers then read the same facts with the per-code queries, which give the
same answers.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from mailbot.codes.knowledge import Knowledge
from mailbot.codes.normalize import ICD10CM
from mailbot.models.codes import CodeFlag, MueLimit, NcciEdit, RvuEntry

log = logging.getLogger(__name__)
EXTRA = "public_facts"
_building: set[int] = set()
_lock = threading.Lock()


@dataclass
class Facts:
    rvu: dict[str, list[Any]]                 # code -> rvu_entry rows, by modifier
    mue: dict[str, list[Any]]                 # code -> mue_limit rows, by setting
    flags: dict[str, list[Any]]               # ICD-10-CM code -> code_flag rows, by flag
    # (setting, column 1|2, code) -> [(effective, deleted or None, number of edits)]
    ncci: dict[tuple[str, int, str], list[tuple[date, date | None, int]]]

    def ncci_count(self, setting: str, column: int, code: str, on: date) -> int:
        """Edits active on ``on`` (effective <= on, not deleted by then), as the SQL count says."""
        return sum(n for effective, deleted, n in self.ncci.get((setting, column, code), ())
                   if effective <= on and (deleted is None or deleted > on))

    def flags_on(self, code: str, on: date) -> list[Any]:
        return [r for r in self.flags.get(code, ())
                if r.valid_from <= on and (r.valid_to is None or r.valid_to >= on)]


def build(session: Session) -> Facts:
    """Read the facts (five queries; the NCCI ones aggregate in the database)."""
    conn = session.connection()
    rvu: dict[str, list[Any]] = {}
    for row in conn.execute(select(RvuEntry.__table__).order_by(RvuEntry.code, RvuEntry.modifier, RvuEntry.id)):
        rvu.setdefault(row.code, []).append(row)
    mue: dict[str, list[Any]] = {}
    for row in conn.execute(select(MueLimit.__table__).order_by(MueLimit.code, MueLimit.setting, MueLimit.id)):
        mue.setdefault(row.code, []).append(row)
    flags: dict[str, list[Any]] = {}
    for row in conn.execute(select(CodeFlag.__table__).where(CodeFlag.system == ICD10CM)
                            .order_by(CodeFlag.code, CodeFlag.flag, CodeFlag.id)):
        flags.setdefault(row.code, []).append(row)
    ncci: dict[tuple[str, int, str], list[tuple[date, date | None, int]]] = {}
    dates: dict[Any, Any] = {None: None}
    for number, column in ((1, NcciEdit.column1), (2, NcciEdit.column2)):
        query = (select(NcciEdit.setting, column, NcciEdit.effective, NcciEdit.deleted, func.count())
                 .group_by(NcciEdit.setting, column, NcciEdit.effective, NcciEdit.deleted))
        for setting, code, effective, deleted, n in conn.execute(query):
            effective = dates.setdefault(effective, effective)
            deleted = dates.setdefault(deleted, deleted)
            ncci.setdefault((setting, number, code), []).append((effective, deleted, n))
    return Facts(rvu=rvu, mue=mue, flags=flags, ncci=ncci)


def facts_of(session: Session, knowledge: Knowledge) -> Facts | None:
    """The facts cached with this (full) knowledge, or None while they are being built."""
    found = knowledge._extra.get(EXTRA)
    if found is not None or getattr(knowledge, "partial", False):
        return found
    _build_in_background(session, knowledge)
    return None


def ensure(session: Session, knowledge: Knowledge) -> Facts:
    """Build the facts now (benchmarks, warm-up) unless they are cached already."""
    found = knowledge._extra.get(EXTRA)
    if found is None:
        found = knowledge._extra[EXTRA] = build(session)
    return found


def _build_in_background(session: Session, knowledge: Knowledge) -> None:
    with _lock:
        if id(knowledge) in _building:
            return
        _building.add(id(knowledge))
    engine = session.get_bind()

    def run() -> None:
        try:
            with Session(engine) as own:
                knowledge._extra.setdefault(EXTRA, build(own))
        except Exception:  # noqa: BLE001 - the next caller starts again; cards use the queries meanwhile
            log.warning("loading the public code facts failed", exc_info=True)
        finally:
            with _lock:
                _building.discard(id(knowledge))

    threading.Thread(target=run, name="load-code-facts", daemon=True).start()
