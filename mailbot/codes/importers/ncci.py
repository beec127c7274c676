"""Import NCCI procedure-to-procedure (PTP) edit tables.

CMS publishes them quarterly as tab-delimited text: a few preamble lines
(title, AMA copyright notice), a header starting ``Column1<TAB>Column2``
(sometimes continued on a second line), then one edit per line::

    Column1  Column2  *=in existence prior to 1996  Effective Date  Deletion Date  Modifier  PTP Edit Rationale

Dates are YYYYMMDD; a deletion date of ``*`` means none, and the edit stops
applying ON the deletion date (exclusive).  Modifier indicator 0 = no
modifier allowed, 1 = allowed, 9 = not applicable.  Practitioner and
outpatient hospital tables are separate settings; each quarterly file
replaces the previous one of its setting.
"""

from __future__ import annotations

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
    parse_yyyymmdd,
    read_text,
    sha256_of,
)
from mailbot.models.codes import NcciEdit

KIND = "ncci"
SETTINGS = ("practitioner", "hospital")
_CODE = re.compile(r"^[0-9A-Z]{5}$")


def guess_setting(path: Path, preamble: str = "") -> str | None:
    """practitioner / hospital from the file name (CMS: ``ccipra``/``ccioph``) or preamble."""
    name = path.name.lower()
    for text in (name, preamble.lower()):
        if any(k in text for k in ("hosp", "ccioph", "outpatient", "opps", "oph")):
            return "hospital"
        if any(k in text for k in ("prac", "ccipra", "physician")):
            return "practitioner"
    return None


def parse_ptp(path: Path) -> tuple[str, list[dict]]:
    """``(preamble, rows)``; raises :class:`CodeImportError` naming the line on bad input."""
    lines = read_text(path).splitlines()
    header_at = None
    for number, line in enumerate(lines[:50]):
        first = line.split("\t", 1)[0].strip().lower().replace(" ", "")
        if first == "column1" and "\t" in line:
            header_at = number
            break
    if header_at is None:
        raise CodeImportError(f"{path}: not an NCCI PTP file (no tab-separated 'Column1  Column2' header "
                              "in the first 50 lines)")
    preamble = "\n".join(lines[:header_at])
    rows = []
    for number, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("\t")]
        if not _CODE.match(cells[0]):
            if not rows:
                continue  # the header's second line
            raise CodeImportError(f"{path}:{number}: {cells[0]!r} is not a CPT/HCPCS code")
        if len(cells) < 6:
            raise CodeImportError(f"{path}:{number}: {len(cells)} fields, expected 7 (truncated?)")
        where = f"{path}:{number}"
        column1, column2, prior, effective, deletion, modifier = cells[:6]
        if not _CODE.match(column2):
            raise CodeImportError(f"{where}: column 2 {column2!r} is not a CPT/HCPCS code")
        if modifier not in ("0", "1", "9"):
            raise CodeImportError(f"{where}: modifier indicator {modifier!r} is not 0, 1 or 9")
        rows.append({
            "column1": column1, "column2": column2, "prior_1996": prior == "*",
            "effective": parse_yyyymmdd(effective, where=where),
            "deleted": None if deletion in ("*", "") else parse_yyyymmdd(deletion, where=where),
            "modifier_indicator": modifier, "rationale": (cells[6] if len(cells) > 6 else "")[:300],
        })
    if not rows:
        raise CodeImportError(f"{path}: NCCI PTP file has a header but no edits (truncated?)")
    return preamble, rows


def import_ptp(session: Session, path: Path, setting: str | None = None,
               progress: Progress | None = None) -> ImportResult:
    checksum = sha256_of(path)
    preamble, rows = parse_ptp(path)
    setting = setting or guess_setting(path, preamble)
    if setting not in SETTINGS:
        raise CodeImportError(f"{path}: cannot tell whether this is the practitioner or the hospital PTP table; "
                              "name the file with 'practitioner' or 'hospital' or pass the setting")
    version = path.stem[:64]
    if already_imported(session, KIND, checksum, setting):
        return ImportResult(KIND, version, setting=setting, source=str(path), skipped=True)
    drop_kind(session, KIND, [NcciEdit], setting)
    effective = min(r["effective"] for r in rows)
    vid = add_version(session, kind=KIND, version=version, setting=setting, source=f"CMS NCCI PTP: {path.name}",
                      effective_from=max(r["effective"] for r in rows) if rows else effective,
                      row_count=len(rows), checksum=checksum,
                      counts={"edits": len(rows), "active": sum(r["deleted"] is None for r in rows)})
    bulk_insert(session, NcciEdit, [{**r, "setting": setting, "version_id": vid} for r in rows],
                progress, f"NCCI PTP ({setting})", len(rows))
    return ImportResult(KIND, version, setting=setting, source=str(path), rows=len(rows))
