"""What every importer shares: checksums, version rows, bulk inserts, errors.

An import of one code set runs in ONE transaction: it either leaves the new
version complete or leaves the database as it was.  Re-importing a file whose
checksum is already recorded changes nothing; importing a changed file of the
same kind (and setting) replaces the previous rows of that kind.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, delete, insert, select
from sqlmodel import Session, SQLModel

from mailbot.models.codes import CodeSetVersion

# progress(label, done, total) -- total may be 0 when unknown
Progress = Callable[[str, int, int], None]
BATCH = 5000
# valid_from for rows whose file gives no start date
EPOCH_DATE = date(1900, 1, 1)


class CodeImportError(Exception):
    """A file could not be imported (malformed, truncated, or the wrong kind).

    The message names the file and, where known, the line; nothing of the
    code set was written."""


@dataclass
class ImportResult:
    kind: str
    version: str
    setting: str = ""
    source: str = ""
    rows: int = 0
    skipped: bool = False  # already imported (same checksum)
    counts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def sha256_of(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def parse_yyyymmdd(value: str, *, where: str) -> date:
    value = value.strip()
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise CodeImportError(f"{where}: {value!r} is not a date (YYYYMMDD)") from None


def already_imported(session: Session, kind: str, checksum: str, setting: str = "") -> bool:
    row = session.exec(
        select(CodeSetVersion.id).where(
            CodeSetVersion.kind == kind, CodeSetVersion.setting == setting, CodeSetVersion.checksum == checksum
        )
    ).first()
    return row is not None


def drop_kind(session: Session, kind: str, tables: Iterable[type[SQLModel]], setting: str = "") -> None:
    """Remove every earlier version of ``kind`` (and ``setting``) with its rows."""
    old = [
        v
        for (v,) in session.execute(
            select(CodeSetVersion.id).where(CodeSetVersion.kind == kind, CodeSetVersion.setting == setting)
        )
    ]
    if not old:
        return
    for table in tables:
        session.execute(delete(table).where(table.version_id.in_(old)))
    session.execute(delete(CodeSetVersion).where(CodeSetVersion.id.in_(old)))


def add_version(session: Session, **values: Any) -> int:
    # column limits hold on PostgreSQL too: file names can be long
    values["version"] = str(values["version"])[:64]
    values["source"] = str(values["source"])[:500]
    version = CodeSetVersion(**values)
    session.add(version)
    session.flush()
    return version.id


def bulk_insert(session: Session, model: type[SQLModel], rows: Iterable[dict[str, Any]],
                progress: Progress | None = None, label: str = "", total: int = 0) -> int:
    """Insert plain dicts in batches (no ORM object per row); returns the count.

    On PostgreSQL the rows go through COPY (several times faster than
    multi-row INSERTs); elsewhere through executemany."""
    table = model.__table__
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _copy(connection, table, rows, progress, label, total)
    count = 0
    for batch in _batches(rows, BATCH):
        session.execute(insert(table), batch)
        count += len(batch)
        if progress:
            progress(label, count, total)
    return count


def _copy(connection, table, rows: Iterable[dict[str, Any]], progress: Progress | None, label: str,
          total: int) -> int:
    columns = [c for c in table.columns if not c.primary_key]
    is_json = [isinstance(c.type, JSON) for c in columns]
    names = ", ".join(f'"{c.name}"' for c in columns)
    count = 0
    raw = connection.connection.driver_connection  # the psycopg connection, inside our transaction
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([json.dumps(row[c.name]) if j else row[c.name] for c, j in zip(columns, is_json)])
            count += 1
            if progress and count % BATCH == 0:
                progress(label, count, total)
    if progress:
        progress(label, count, total)
    return count


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_text(path: Path, *, encoding: str = "utf-8") -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CodeImportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_csv(path: Path, header: list[str]) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV file whose first line must be ``header``
    exactly; a malformed, truncated or wrongly headed file raises
    :class:`CodeImportError` naming the file and line."""
    try:
        rows = list(csv.reader(io.StringIO(read_text(path)), strict=True))
    except csv.Error as exc:
        raise CodeImportError(f"{path}: malformed CSV ({exc})") from None
    if not rows or rows[0] != header:
        raise CodeImportError(f"{path}:1: unexpected header {rows[0] if rows else '(empty file)'}; expected {header}")
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise CodeImportError(f"{path}:{number}: {len(row)} fields, expected {len(header)} (truncated?)")
        out.append((number, dict(zip(header, row))))
    return out
