"""Import the shipped NCCI PTP table of the hospital outpatient setting (from the I/OCE).

``data/codesets/pyoce/ncci-hospital-ptp.csv.xz`` (``scripts/derive_pyoce.py``)
holds every hospital outpatient PTP pair of the I/OCE quarters July 2019 ..
April 2026: column 1, column 2, the modifier indicator (0/1), the first day it
applies and the day it stops applying (exclusive; empty while in force).
All 1.59 million pairs are kept, not only the 1.40 million in force in April
2026: dates of service in the past are what audits and appeals ask about, and
the extra rows cost about a tenth more import time.

The rows stream from the file into ``ncci_edit`` (COPY on PostgreSQL,
batched executemany on SQLite) without building them all in memory.  An
operator's own hospital PTP file (``mailbot codes import --ncci``) replaces
this table and is then kept: a later shipped import skips while it is there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from mailbot.codes.importers.base import (
    CodeImportError,
    ImportResult,
    Progress,
    BATCH,
    add_version,
    already_imported,
    drop_kind,
    sha256_of,
)
from mailbot.codes.importers.derived_csv import PROCEDURE, manifest, open_text
from mailbot.models.codes import CodeSetVersion, NcciEdit

KIND = "ncci"
SETTING = "hospital"
HEADER = ["column1", "column2", "modifier_indicator", "effective", "deleted"]
SHIPPED_SOURCE = "pyoce"  # the source of a shipped version starts with this
COLUMNS = ("setting", "column1", "column2", "prior_1996", "effective", "deleted", "modifier_indicator", "rationale",
           "version_id")
NULL = "\\N"  # COPY text format
LABEL = "NCCI PTP (hospital outpatient, shipped)"
_DATE = r"(?:19|20)\d\d-[01]\d-[0-3]\d"
_LINE = re.compile(rf"^([0-9A-Z]{{5}}),([0-9A-Z]{{5}}),([019]),({_DATE}),({_DATE})?\r?\n?$")


def operator_table_loaded(session: Session) -> str | None:
    """The operator-imported hospital PTP version, if one is loaded (it wins)."""
    for version, source in session.execute(select(CodeSetVersion.version, CodeSetVersion.source).where(
            CodeSetVersion.kind == KIND, CodeSetVersion.setting == SETTING)):
        if not source.startswith(SHIPPED_SOURCE):
            return version
    return None


def _rows(path: Path, version_id: int, counts: dict[str, int]) -> Iterator[tuple]:
    """Checked rows as tuples in :data:`COLUMNS` order; dates stay ISO text (what both
    databases take for a DATE column).  One regular expression checks a whole
    line (the file has no quoting), which keeps 1.6 million rows cheap; a line
    that fails it is then explained field by field."""
    with open_text(path) as fh:
        header = fh.readline().rstrip("\r\n")
        if header != ",".join(HEADER):
            raise CodeImportError(f"{path}:1: header {header[:80]!r} is not {','.join(HEADER)!r} "
                                  "(wrong file or layout)")
        for number, line in enumerate(fh, start=2):
            match = _LINE.match(line)
            if match is None:
                _explain(f"{path}:{number}", line.rstrip("\r\n"))
            column1, column2, indicator, effective, deleted = match.groups()
            counts["edits"] += 1
            counts["active"] += not deleted
            yield (SETTING, column1, column2, False, effective, deleted or None, indicator, "", version_id)


def _explain(where: str, line: str) -> None:
    fields = line.split(",")
    if len(fields) != len(HEADER):
        raise CodeImportError(f"{where}: {len(fields)} fields, expected {len(HEADER)} ({','.join(HEADER)})")
    column1, column2, indicator, effective, deleted = fields
    for value in (column1, column2):
        if not PROCEDURE.match(value):
            raise CodeImportError(f"{where}: {value!r} is not a CPT/HCPCS code")
    if indicator not in ("0", "1", "9"):
        raise CodeImportError(f"{where}: modifier indicator {indicator!r} is not 0, 1 or 9")
    raise CodeImportError(f"{where}: {effective!r} / {deleted!r} is not a date (YYYY-MM-DD)")


def _insert(session: Session, rows: Iterator[tuple], progress: Progress | None, total: int) -> None:
    """COPY on PostgreSQL, a plain executemany on SQLite; the table's indexes are
    dropped first and rebuilt after (inside the same transaction)."""
    connection = session.connection()
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    raw = connection.connection.driver_connection
    done = 0
    postgres = connection.dialect.name == "postgresql"
    indexes = raw.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ncci_edit' AND indexname NOT LIKE '%pkey'"
        if postgres else
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ncci_edit' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        raw.execute(f'DROP INDEX "{name}"')
    if postgres:
        # COPY text lines written in large chunks: much cheaper than one write_row per edit
        with raw.cursor() as cursor, cursor.copy(f'COPY "ncci_edit" ({names}) FROM STDIN') as copy:
            while batch := list(islice(rows, BATCH * 10)):
                copy.write("".join(f"{r[0]}\t{r[1]}\t{r[2]}\tf\t{r[4]}\t{r[5] or NULL}\t{r[6]}\t\t{r[8]}\n"
                                   for r in batch))
                done += len(batch)
                if progress:
                    progress(LABEL, done, total)
    else:
        marks = ", ".join("?" for _ in COLUMNS)
        statement = f'INSERT INTO "ncci_edit" ({names}) VALUES ({marks})'
        while batch := list(islice(rows, BATCH * 10)):
            raw.executemany(statement, batch)
            done += len(batch)
            if progress:
                progress(LABEL, done, total)
    for _, sql in indexes:  # one sort per index instead of 1.6 million index updates
        raw.execute(sql)
    if progress:
        progress(LABEL, done, total)


def import_shipped_ptp(session: Session, path: Path, progress: Progress | None = None) -> ImportResult:
    info = manifest(path.parent)
    version = date.fromisoformat(info["latest_quarter_start"]).strftime("%B %Y")
    operator = operator_table_loaded(session)
    if operator:
        return ImportResult(KIND, version, setting=SETTING, source=str(path), skipped=True,
                            counts={"kept_operator_table": operator})
    checksum = sha256_of(path)
    if already_imported(session, KIND, checksum, SETTING):
        return ImportResult(KIND, version, setting=SETTING, source=str(path), skipped=True)
    drop_kind(session, KIND, [NcciEdit], SETTING)
    total = info["files"][path.name]["rows"] if path.name in info.get("files", {}) else 0
    vid = add_version(session, kind=KIND, version=version, setting=SETTING,
                      source=f"{SHIPPED_SOURCE} {info['pyoce_version']} (I/OCE {info['latest_ioce_version']}): "
                             f"{path.name}",
                      effective_from=date.fromisoformat(info["latest_quarter_start"]), row_count=0,
                      checksum=checksum, counts={})
    counts = {"edits": 0, "active": 0}
    _insert(session, _rows(path, vid, counts), progress, total)
    row = session.get(CodeSetVersion, vid)
    row.row_count = counts["edits"]
    row.counts = {**counts, "ioce_version": info["latest_ioce_version"], "wheel_sha256": info["wheel_sha256"],
                  "first_quarter": info["first_quarter"]}
    session.add(row)
    session.flush()
    return ImportResult(KIND, version, setting=SETTING, source=str(path), rows=counts["edits"], counts=counts)
