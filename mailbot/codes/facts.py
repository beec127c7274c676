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

import json
import logging
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import Text, cast, func, select
from sqlmodel import Session

from mailbot.codes.knowledge import Knowledge
from mailbot.codes.normalize import ICD10CM
from mailbot.models.codes import CodeFlag, MueLimit, NcciEdit, RvuEntry

log = logging.getLogger(__name__)
EXTRA = "public_facts"
_building: set[int] = set()
_lock = threading.Lock()


class RvuRow(NamedTuple):
    """The ``rvu_entry`` fields a card shows (no descriptor); indicators kept as their JSON text."""

    modifier: str
    status: str
    global_days: str
    work_rvu: float
    nonfacility_pe_rvu: float
    facility_pe_rvu: float
    mp_rvu: float
    nonfacility_total: float
    facility_total: float
    conversion_factor: float
    version_id: int
    indicators_json: str | None

    @property
    def indicators(self) -> dict[str, Any]:
        return json.loads(self.indicators_json) if self.indicators_json else {}


class FlagRow(NamedTuple):
    flag: str
    value: str
    valid_from: date
    valid_to: date | None
    version_id: int


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
    # plain tuples with shared strings, not ORM/Core row objects (those cost ~2 KB a row here)
    memo: dict[Any, Any] = {None: None}
    rvu: dict[str, list[Any]] = {}
    t = RvuEntry
    query = (select(t.code, t.modifier, t.status, t.global_days, t.work_rvu, t.nonfacility_pe_rvu,
                    t.facility_pe_rvu, t.mp_rvu, t.nonfacility_total, t.facility_total, t.conversion_factor,
                    t.version_id, cast(t.indicators, Text))
             .order_by(t.code, t.modifier, t.id))
    for code, *fields in conn.execute(query):
        fields = [memo.setdefault(f, f) if isinstance(f, str) else f for f in fields]
        rvu.setdefault(memo.setdefault(code, code), []).append(RvuRow(*fields))
    mue: dict[str, list[Any]] = {}
    m = MueLimit
    for row in conn.execute(select(m.setting, m.code, m.value, m.adjudication, m.rationale, m.version_id)
                            .order_by(m.code, m.setting, m.id)):
        mue.setdefault(row.code, []).append(_MueRow(*row))
    flags: dict[str, list[Any]] = {}
    f = CodeFlag
    for code, flag, value, valid_from, valid_to, version_id in conn.execute(
            select(f.code, f.flag, f.value, f.valid_from, f.valid_to, f.version_id)
            .where(f.system == ICD10CM).order_by(f.code, f.flag, f.id)):
        row = FlagRow(memo.setdefault(flag, flag), memo.setdefault(value, value), memo.setdefault(valid_from, valid_from),
                      memo.setdefault(valid_to, valid_to), version_id)
        flags.setdefault(memo.setdefault(code, code), []).append(row)
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


class _MueRow(NamedTuple):
    setting: str
    code: str
    value: int
    adjudication: str
    rationale: str
    version_id: int


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
