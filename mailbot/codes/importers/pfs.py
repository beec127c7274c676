"""Import the Physician Fee Schedule RVU file (CMS PPRRVU, CSV rendering).

One row per code and modifier (``26``, ``TC``, ``53`` rows are separate),
for CPT and HCPCS alike: status, global days, work / practice expense /
malpractice RVUs, totals, the conversion factor and the PC/TC, multiple
procedure, bilateral, assistant, co- and team surgeon indicators.  CPT rows
arrive with their (AMA) descriptions blanked and are stored that way.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
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
from mailbot.models.codes import RvuEntry

KIND = "pfs"
REQUIRED = ["HCPCS", "MOD", "DESCRIPTION", "STATUS CODE", "WORK RVU", "NON-FAC PE RVU", "FACILITY PE RVU",
            "MP RVU", "NON-FACILITY TOTAL", "FACILITY TOTAL", "PCTC IND", "GLOB DAYS", "MULT PROC",
            "BILAT SURG", "ASST SURG", "CO-SURG", "TEAM SURG", "CONV FACTOR"]
INDICATORS = {"PCTC IND": "pctc", "MULT PROC": "multiple_procedure", "BILAT SURG": "bilateral",
              "ASST SURG": "assistant", "CO-SURG": "co_surgeon", "TEAM SURG": "team_surgeon",
              "ENDO BASE": "endoscopic_base", "DIAGNOSTIC PROC": "diagnostic_procedure",
              "NON-FAC NA IND": "nonfacility_na", "FAC NA IND": "facility_na",
              "PRE OP": "pre_op", "INTRA OP": "intra_op", "POST OP": "post_op", "FAMILY IND": "family"}
_CODE = re.compile(r"^[0-9A-Z]{5}$")


def _float(value: str, where: str) -> float:
    value = value.strip()
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        raise CodeImportError(f"{where}: {value!r} is not a number") from None


def parse_pfs(path: Path) -> list[dict]:
    text = read_text(path)
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise CodeImportError(f"{path}: empty or unreadable CSV") from None
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CodeImportError(f"{path}: not a PFS RVU file (missing columns {', '.join(missing)})")
    index = {name: i for i, name in enumerate(header)}
    rows: dict[tuple[str, str], dict] = {}
    try:
        for number, cells in enumerate(reader, start=2):
            if not cells or not any(c.strip() for c in cells):
                continue
            where = f"{path}:{number}"
            if len(cells) != len(header):
                raise CodeImportError(f"{where}: {len(cells)} fields, expected {len(header)} (truncated?)")
            code = cells[index["HCPCS"]].strip().upper()
            if not _CODE.match(code):
                raise CodeImportError(f"{where}: {code!r} is not a CPT/HCPCS code")
            modifier = cells[index["MOD"]].strip().upper()
            rows[(code, modifier)] = {
                "code": code, "modifier": modifier, "description": cells[index["DESCRIPTION"]].strip(),
                "status": cells[index["STATUS CODE"]].strip(), "global_days": cells[index["GLOB DAYS"]].strip(),
                "work_rvu": _float(cells[index["WORK RVU"]], where),
                "nonfacility_pe_rvu": _float(cells[index["NON-FAC PE RVU"]], where),
                "facility_pe_rvu": _float(cells[index["FACILITY PE RVU"]], where),
                "mp_rvu": _float(cells[index["MP RVU"]], where),
                "nonfacility_total": _float(cells[index["NON-FACILITY TOTAL"]], where),
                "facility_total": _float(cells[index["FACILITY TOTAL"]], where),
                "conversion_factor": _float(cells[index["CONV FACTOR"]], where),
                "indicators": {key: cells[index[col]].strip() for col, key in INDICATORS.items()
                               if col in index and cells[index[col]].strip()},
            }
    except csv.Error as exc:
        raise CodeImportError(f"{path}: malformed CSV ({exc})") from None
    if not rows:
        raise CodeImportError(f"{path}: no RVU rows")
    return list(rows.values())


def version_of(path: Path) -> str:
    m = re.search(r"(20\d\d)", path.name)
    return f"CY{m.group(1)}" if m else path.stem


def import_pfs(session: Session, path: Path, progress: Progress | None = None) -> ImportResult:
    checksum = sha256_of(path)
    version = version_of(path)
    if already_imported(session, KIND, checksum):
        return ImportResult(KIND, version, source=str(path), skipped=True)
    if progress:
        progress("PFS RVUs", 0, 0)
    rows = parse_pfs(path)
    drop_kind(session, KIND, [RvuEntry])
    year = int(version[2:]) if version[2:].isdigit() else None
    factors = sorted({r["conversion_factor"] for r in rows if r["conversion_factor"]})
    vid = add_version(session, kind=KIND, version=version, source=f"CMS PFS RVU file: {path.name}",
                      effective_from=date(year, 1, 1) if year else None,
                      effective_to=date(year, 12, 31) if year else None, row_count=len(rows), checksum=checksum,
                      counts={"rows": len(rows), "conversion_factor": factors[-1] if factors else None})
    bulk_insert(session, RvuEntry, [{**r, "version_id": vid} for r in rows], progress, "PFS RVUs", len(rows))
    return ImportResult(KIND, version, source=str(path), rows=len(rows))
