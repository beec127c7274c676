"""Import a licensed CPT descriptor file (the operator's AMA licence, never shipped).

Format (documented in README "Code sets"): UTF-8 text, one code per line,
``CODE<TAB>DESCRIPTOR`` or ``CODE,DESCRIPTOR`` (CSV quoting allowed); an
optional first header line (``code<sep>descriptor``) and ``#`` comment lines
are skipped.  Codes are 5 characters: ``99213``, ``0001F``, ``0042T``, ``0001U``.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

from sqlmodel import Session

from mailbot.codes.importers.base import (
    EPOCH_DATE,
    CodeImportError,
    ImportResult,
    Progress,
    add_version,
    already_imported,
    bulk_insert,
    drop_kind,
    read_text,
    sha256_of,
)
from mailbot.models.codes import CodeEntry

KIND = "cpt"
_CODE = re.compile(r"^\d{4}[0-9FTUM]$")


def parse_cpt(path: Path) -> list[dict]:
    lines = [ln for ln in read_text(path).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise CodeImportError(f"{path}: empty CPT file")
    delimiter = "\t" if "\t" in lines[0] else ","
    try:
        table = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise CodeImportError(f"{path}: malformed {('tab' if delimiter == chr(9) else 'comma')}-separated file "
                              f"({exc})") from None
    if table and not _CODE.match(table[0][0].strip().upper()):
        table = table[1:]  # header line
    rows: dict[str, dict] = {}
    for number, cells in enumerate(table, start=1):
        code = cells[0].strip().upper() if cells else ""
        if not _CODE.match(code) or len(cells) < 2 or not cells[1].strip():
            raise CodeImportError(f"{path}: data line {number}: expected CODE{'<TAB>' if delimiter == chr(9) else ','}"
                                  f"DESCRIPTOR with a 5-character CPT code, got {delimiter.join(cells)[:80]!r}")
        rows[code] = {"system": KIND, "code": code, "title": " ".join(cells[1].split()), "short_title": "",
                      "billable": True, "parent": "", "valid_from": EPOCH_DATE, "valid_to": None,
                      "notes": {"source": "licensed CPT file"}}
    return list(rows.values())


def import_cpt(session: Session, path: Path, effective: date | None = None,
               progress: Progress | None = None) -> ImportResult:
    checksum = sha256_of(path)
    version = path.stem[:64]
    if already_imported(session, KIND, checksum):
        return ImportResult(KIND, version, source=str(path), skipped=True)
    rows = parse_cpt(path)
    drop_kind(session, KIND, [CodeEntry])
    vid = add_version(session, kind=KIND, version=version, source=f"licensed CPT file: {path.name}",
                      effective_from=effective, row_count=len(rows), checksum=checksum, counts={"codes": len(rows)})
    bulk_insert(session, CodeEntry, [{**r, "version_id": vid} for r in rows], progress, "CPT (licensed)", len(rows))
    return ImportResult(KIND, version, source=str(path), rows=len(rows))
