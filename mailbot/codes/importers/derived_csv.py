"""Read the derived CSV files shipped in ``data/codesets`` (gzip, xz or plain).

The files are written by ``scripts/derive_*.py``; each has a fixed header.
:func:`read_rows` checks the header and the field count of every line and
raises :class:`CodeImportError` naming the file and the line, so a file in
the wrong layout is refused before (or while) its rows stream into the
database -- and the importer's transaction then leaves the set as it was.
"""

from __future__ import annotations

import csv
import gzip
import json
import lzma
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from mailbot.codes.importers.base import CodeImportError

PROCEDURE = re.compile(r"^[0-9A-Z]{4}[0-9A-Z]$")
ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")


def open_text(path: Path) -> TextIO:
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8", newline="")
        if path.suffix == ".xz":
            return lzma.open(path, "rt", encoding="utf-8", newline="")
        return open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise CodeImportError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_rows(path: Path, header: list[str]) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(where, fields)`` for each data line; ``where`` is ``file:line``."""
    try:
        with open_text(path) as fh:
            reader = csv.reader(fh)
            first = next(reader, None)
            if first != header:
                raise CodeImportError(f"{path}:1: header {','.join(first or [])!r} is not "
                                      f"{','.join(header)!r} (wrong file or layout)")
            for number, fields in enumerate(reader, start=2):
                if len(fields) != len(header):
                    raise CodeImportError(f"{path}:{number}: {len(fields)} fields, expected {len(header)} "
                                          f"({','.join(header)})")
                yield f"{path}:{number}", fields
    except (EOFError, lzma.LZMAError, gzip.BadGzipFile, UnicodeDecodeError, csv.Error) as exc:
        raise CodeImportError(f"{path}: not a readable compressed CSV ({exc})") from None


def iso_date(value: str, where: str, *, optional: bool = False) -> date | None:
    if not value and optional:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CodeImportError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def code(value: str, pattern: re.Pattern[str], where: str, what: str) -> str:
    if not pattern.match(value):
        raise CodeImportError(f"{where}: {value!r} is not {what}")
    return value


def manifest(directory: Path) -> dict[str, Any]:
    path = directory / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CodeImportError(f"{path}: cannot read the manifest ({exc})") from None
