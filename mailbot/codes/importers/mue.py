"""Import Medically Unlikely Edit (MUE) tables (CMS CSV).

The CMS file starts with one quoted cell holding a multi-line AMA/CMS notice,
then the header ``"HCPCS/CPT Code","Practitioner Services MUE Values",
"MUE Adjudication Indicator","MUE Rationale"`` (the second column names the
setting: Practitioner, Outpatient Hospital or DME Supplier Services), then
one row per code.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from sqlmodel import Session

from mailbot.codes.importers.base import (
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
from mailbot.models.codes import MueLimit

KIND = "mue"
_CODE = re.compile(r"^[0-9A-Z]{5}$")
_SETTING_WORDS = (("practitioner", "practitioner"), ("hospital", "hospital"), ("dme", "dme"))


def parse_mue(path: Path) -> tuple[str, list[dict]]:
    """``(setting, rows)`` of one MUE file."""
    text = read_text(path)
    try:
        table = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        raise CodeImportError(f"{path}: malformed CSV, e.g. an unterminated quote ({exc}; truncated?)") from None
    header_at = next((i for i, row in enumerate(table[:20]) if row and row[0].strip().lower() == "hcpcs/cpt code"),
                     None)
    if header_at is None:
        raise CodeImportError(f"{path}: not a CMS MUE file (no 'HCPCS/CPT Code' header row)")
    header = [h.strip().lower() for h in table[header_at]]
    if len(header) < 3 or "mue values" not in header[1]:
        raise CodeImportError(f"{path}: unexpected MUE header {table[header_at]}")
    setting = next((s for word, s in _SETTING_WORDS if word in header[1]), None)
    if setting is None:
        raise CodeImportError(f"{path}: cannot tell the MUE setting from column {table[header_at][1]!r}")
    rows: dict[str, dict] = {}
    for number, cells in enumerate(table[header_at + 1 :], start=header_at + 2):
        if not cells or not any(c.strip() for c in cells):
            continue
        where = f"{path}: row {number}"
        if len(cells) < 3:
            raise CodeImportError(f"{where}: {len(cells)} fields, expected 4 (truncated?)")
        code = cells[0].strip().upper()
        if not _CODE.match(code):
            raise CodeImportError(f"{where}: {code!r} is not a CPT/HCPCS code")
        try:
            value = int(cells[1].strip())
        except ValueError:
            raise CodeImportError(f"{where}: MUE value {cells[1]!r} is not a whole number") from None
        rows[code] = {"code": code, "value": value, "adjudication": cells[2].strip()[:200],
                      "rationale": (cells[3].strip() if len(cells) > 3 else "")[:300]}
    if not rows:
        raise CodeImportError(f"{path}: MUE file has a header but no rows (truncated?)")
    return setting, list(rows.values())


def import_mue(session: Session, path: Path, progress: Progress | None = None) -> ImportResult:
    checksum = sha256_of(path)
    setting, rows = parse_mue(path)
    version = path.stem[:64]
    if already_imported(session, KIND, checksum, setting):
        return ImportResult(KIND, version, setting=setting, source=str(path), skipped=True)
    drop_kind(session, KIND, [MueLimit], setting)
    vid = add_version(session, kind=KIND, version=version, setting=setting, source=f"CMS MUE: {path.name}",
                      row_count=len(rows), checksum=checksum, counts={"codes": len(rows)})
    bulk_insert(session, MueLimit, [{**r, "setting": setting, "version_id": vid} for r in rows],
                progress, f"MUE ({setting})", len(rows))
    return ImportResult(KIND, version, setting=setting, source=str(path), rows=len(rows))
