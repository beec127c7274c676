"""The code rows in memory: what a code card needs, without a query per code.

Issue 16 found most of a LOOKUP reply's CPU in per-card ORM queries (a
code's rows, its ancestors' notes, its children).  :func:`get_knowledge`
loads every ``code_entry`` row once -- one SELECT, notes kept as their JSON
text and decoded only for the codes a card shows -- and caches the result
per database, keyed like the search index (:mod:`mailbot.codes.index`) by
the imported version rows, so a new import is picked up.

A :class:`Knowledge` answers "rows of this code", "row valid on a date",
"children valid on a date" and "rows that start on a date", which is all
that :mod:`.history`, :mod:`.successors` and :mod:`.lookup` ask.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import Text, cast, false, or_, select
from sqlmodel import Session

from mailbot.codes.catalogue import Catalogue
from mailbot.models.codes import CodeEntry

SYSTEMS = ("icd10cm", "hcpcs", "cpt", "modifier")
log = logging.getLogger(__name__)


class Row(NamedTuple):
    """One validity interval of one code (a ``code_entry`` row, read-only)."""

    system: str
    code: str
    title: str
    short_title: str
    billable: bool
    parent: str
    valid_from: date
    valid_to: date | None
    version_id: int
    notes_json: str | None

    @property
    def notes(self) -> dict[str, Any]:
        """The row's notes (decoded on each access: few rows are ever shown)."""
        return json.loads(self.notes_json) if self.notes_json else {}

    def valid_on(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or self.valid_to >= on)


@dataclass
class Knowledge:
    """Every code row of one database, indexed by code and by parent."""

    catalogue: Catalogue
    rows: dict[str, dict[str, tuple[Row, ...]]]       # system -> code -> rows, oldest first
    children: dict[str, dict[str, list[str]]]         # system -> parent code -> child codes
    starts: dict[tuple[str, date], list[Row]] = field(default_factory=dict)
    _extra: dict[str, Any] = field(default_factory=dict)  # lazily built indexes (e.g. HCPCS drugs)
    partial: bool = False  # only a hint's rows (load(only=...)): not cached, so nothing is built on it

    def rows_of(self, system: str, code: str) -> tuple[Row, ...]:
        return self.rows.get(system, {}).get(code, ())

    def on(self, system: str, code: str, when: date) -> Row | None:
        return next((r for r in self.rows_of(system, code) if r.valid_on(when)), None)

    def children_on(self, system: str, code: str, when: date) -> list[Row]:
        out = []
        for child in self.children.get(system, {}).get(code, ()):
            row = self.on(system, child, when)
            if row is not None and row.parent == code:
                out.append(row)
        return out

    def starting(self, system: str, when: date) -> list[Row]:
        """Rows of ``system`` whose interval starts on ``when`` (what a release added or changed)."""
        return self.starts.get((system, when), [])

    def extra(self, name: str, build) -> Any:
        value = self._extra.get(name)
        if value is None:
            value = self._extra[name] = build(self)
        return value


def load(session: Session, only: "Hint | None" = None) -> Knowledge:
    """Read every code row (one query) into a :class:`Knowledge`; with ``only``,
    just the rows a few cards need (see :func:`get_knowledge`).

    Dates and notes arrive as text and are decoded through small memo
    tables: a few hundred distinct dates and ~12,000 distinct notes cover
    ~110,000 rows, so each distinct value is parsed and stored once."""
    query = (select(CodeEntry.system, CodeEntry.code, CodeEntry.title, CodeEntry.short_title, CodeEntry.billable,
                    CodeEntry.parent, cast(CodeEntry.valid_from, Text), cast(CodeEntry.valid_to, Text),
                    CodeEntry.version_id, cast(CodeEntry.notes, Text))
             .where(CodeEntry.system.in_(SYSTEMS))
             .order_by(CodeEntry.system, CodeEntry.code, CodeEntry.valid_from))
    if only is not None:
        query = query.where(only.clause())
    dates: dict[str | None, date | None] = {None: None}
    notes: dict[str | None, str | None] = {None: None, "{}": None, "null": None}
    names: dict[str, str] = {}
    grouped: dict[str, dict[str, list[Row]]] = {}
    children: dict[str, dict[str, list[str]]] = {}
    starts: dict[tuple[str, date], list[Row]] = {}
    for system, code, title, short, billable, parent, start, end, version_id, note in \
            session.connection().execute(query):
        valid_from = dates.get(start) or dates.setdefault(start, date.fromisoformat(start[:10]))
        valid_to = dates[end] if end in dates else dates.setdefault(end, date.fromisoformat(end[:10]))
        note = notes[note] if note in notes else notes.setdefault(note, note)
        # one string object per code, shared by its rows, its children's parent field and the indexes
        code = names.setdefault(code, code)
        parent = names.setdefault(parent, parent) if parent else ""
        row = Row(system, code, title, short or "", bool(billable), parent, valid_from, valid_to,
                  version_id, note)
        by_code = grouped.get(system) or grouped.setdefault(system, {})
        bucket = by_code.get(code)
        if bucket is not None:
            bucket.append(row)
        else:
            by_code[code] = [row]
            if parent:  # rows come ordered by code: a code's first row names its parent
                children.setdefault(system, {}).setdefault(parent, []).append(code)
        starts.setdefault((system, valid_from), []).append(row)
    return Knowledge(catalogue=Catalogue.detached(session), rows={system: {code: tuple(rows) for code, rows in by_code.items()}
                           for system, by_code in grouped.items()},
                     children=children, starts=starts, partial=only is not None)


@dataclass
class Hint:
    """What a few cards need when the full knowledge is not loaded yet: whole
    ICD-10-CM categories (a code, its ancestors, children, descendants and the
    same-category additions successors look at) and whole small systems."""

    categories: set[str] = field(default_factory=set)   # ICD-10-CM, e.g. "M54"
    systems: set[str] = field(default_factory=set)      # hcpcs, cpt, modifier

    def clause(self):
        parts = [CodeEntry.system.in_(sorted(self.systems))] if self.systems else []
        parts += [(CodeEntry.system == "icd10cm") & CodeEntry.code.like(f"{c}%") for c in sorted(self.categories)]
        return or_(*parts) if parts else false()


_cache: dict[str, tuple[tuple, Knowledge]] = {}
_loading: set[str] = set()
_checked: dict[str, float] = {}
_lock = threading.Lock()
GENERATION_TTL = 2.0  # seconds between checks that the code sets did not change


def warm_in_background(read: Callable[[], AbstractContextManager[Session]]) -> None:
    """Load the knowledge in a background thread, so the first LOOKUP or draft
    of a fresh process does not pay for it (seconds); ``read`` opens a read
    session (``Database.read``).  A failure only means a cold first use."""

    def warm() -> None:
        try:
            with read() as session:
                get_knowledge(session)
        except Exception:  # noqa: BLE001 - warming is an optimisation
            log.warning("could not pre-load the code knowledge", exc_info=True)

    threading.Thread(target=warm, name="warm-code-knowledge", daemon=True).start()


def get_knowledge(source: Session | Knowledge, hint: Hint | None = None) -> Knowledge:
    """The cached knowledge of this session's database (or ``source`` itself).

    Rebuilt when the imported versions change; whether they did is asked of
    the database at most every ``GENERATION_TTL`` seconds (an import in this
    process invalidates at once).  A caller that gives a ``hint`` never waits
    for the full load (seconds, in a fresh worker process): while it runs in a
    background thread, such a caller gets just the rows of its hint."""
    if isinstance(source, Knowledge):
        return source
    from mailbot.codes.index import generation

    session = source
    key = str(session.get_bind().url)
    cached = _cache.get(key)
    now = time.monotonic()
    if cached and now - _checked.get(key, 0.0) < GENERATION_TTL:
        return cached[1]
    gen = generation(session)[:3]  # not the date: the rows hold every date already
    _checked[key] = now
    if cached and cached[0] == gen:
        return cached[1]
    if hint is not None:
        _load_in_background(session, key, gen)
        return load(session, only=hint)
    with _lock:
        cached = _cache.get(key)
        if cached and cached[0] == gen:
            return cached[1]
        knowledge = load(session)
        _cache[key] = (gen, knowledge)
        return knowledge


def _load_in_background(session: Session, key: str, gen: tuple) -> None:
    with _lock:
        if key in _loading:
            return
        _loading.add(key)
    engine = session.get_bind()

    def run() -> None:
        try:
            with Session(engine) as own:
                knowledge = load(own)
            with _lock:
                _cache[key] = (gen, knowledge)
        except Exception:  # noqa: BLE001 - the next caller loads again (or gets a partial view)
            log.warning("loading the code knowledge failed", exc_info=True)
        finally:
            with _lock:
                _loading.discard(key)

    threading.Thread(target=run, name="load-code-knowledge", daemon=True).start()


def invalidate() -> None:
    with _lock:
        _cache.clear()
        _checked.clear()
