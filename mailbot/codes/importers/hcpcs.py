"""Import the CMS HCPCS Level II fixed-width file (``HCPC<year>_<month>_ANWEB_*.txt``).

320-character records (layout in ``HCPC2025_recordlayout.txt``): record id
``3`` starts a procedure code, ``4`` continues its long description, ``7``
starts a Level II modifier, ``8`` continues it.  Codes get their long and
short descriptors, added / action-effective / termination dates, action code,
pricing, coverage, BETOS and type-of-service; a code is valid from its added
date through its termination date.
"""

from __future__ import annotations

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
    parse_yyyymmdd,
    read_text,
    sha256_of,
)
from mailbot.models.codes import CodeEntry

KIND = "hcpcs"
RECORD_LENGTH = 320

# (name, first column, last column) -- 1-based, inclusive, as in the CMS layout
FIELDS = {
    "code": (1, 5), "modifier": (4, 5), "sequence": (6, 10), "record": (11, 11),
    "long": (12, 91), "short": (92, 119), "pricing": (120, 121), "multiple_pricing": (128, 128),
    "cim": (129, 134), "mcm": (147, 154), "statute": (171, 180), "lab_cert": (181, 183),
    "xref": (205, 209), "coverage": (230, 230), "asc_group": (231, 232), "asc_date": (233, 240),
    "processing_note": (253, 256), "betos": (257, 259), "type_of_service": (261, 261),
    "anesthesia_units": (266, 268), "added": (269, 276), "action_effective": (277, 284),
    "terminated": (285, 292), "action": (293, 293),
}
_CODE = re.compile(r"^[A-V]\d{4}$")
_MODIFIER = re.compile(r"^[0-9A-Z]{2}$")


def _field(line: str, name: str) -> str:
    first, last = FIELDS[name]
    return line[first - 1 : last].strip()


def version_of(path: Path) -> str:
    m = re.search(r"HCPC(\d{4})_([A-Z]{3})", path.name.upper())
    return f"{m.group(1)} {m.group(2).title()}" if m else path.stem


def parse_hcpcs(path: Path) -> tuple[list[dict], list[dict]]:
    """``(codes, modifiers)`` as row dicts (without version_id)."""
    text = read_text(path, encoding="ascii")
    lines = text.splitlines()
    if not lines:
        raise CodeImportError(f"{path}: empty file")
    codes: dict[str, dict] = {}
    modifiers: dict[str, dict] = {}
    current: dict | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) != RECORD_LENGTH:
            raise CodeImportError(
                f"{path}:{number}: record is {len(line)} characters, expected {RECORD_LENGTH} "
                "(not a CMS HCPCS fixed-width file, or truncated)")
        record = _field(line, "record")
        if record in ("3", "7"):
            is_code = record == "3"
            key = _field(line, "code") if is_code else _field(line, "modifier")
            if not (_CODE if is_code else _MODIFIER).match(key):
                raise CodeImportError(f"{path}:{number}: {key!r} is not a HCPCS {'code' if is_code else 'modifier'}")
            target = codes if is_code else modifiers
            if key in target:  # a second first-line: keep the first, it carries the dates
                current = None
                continue
            where = f"{path}:{number}"
            added = _date(_field(line, "added"), where)
            terminated = _date(_field(line, "terminated"), where)
            current = {
                "system": KIND if is_code else "modifier", "code": key,
                "title": _field(line, "long"), "short_title": _field(line, "short"),
                "billable": True, "parent": "", "valid_from": added or EPOCH_DATE, "valid_to": terminated,
                "notes": {k: v for k, v in {
                    "pricing": _field(line, "pricing"), "coverage": _field(line, "coverage"),
                    "betos": _field(line, "betos"), "type_of_service": _field(line, "type_of_service"),
                    "added": added.isoformat() if added else "",
                    "action_effective": _iso(_date(_field(line, "action_effective"), where)),
                    "terminated": terminated.isoformat() if terminated else "",
                    "action": _field(line, "action"), "xref": _field(line, "xref"),
                    "asc_group": _field(line, "asc_group"), "processing_note": _field(line, "processing_note"),
                    "source": "hcpcs",
                }.items() if v},
            }
            target[key] = current
        elif record in ("4", "8"):
            if current is not None:
                current["title"] = f"{current['title']} {_field(line, 'long')}".strip()
        else:
            raise CodeImportError(f"{path}:{number}: unknown record identification code {record!r}")
    if not codes:
        raise CodeImportError(f"{path}: no HCPCS procedure records (record id 3) found")
    return list(codes.values()), list(modifiers.values())


def _date(value: str, where: str) -> date | None:
    return parse_yyyymmdd(value, where=where) if value else None


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


def import_hcpcs(session: Session, path: Path, progress: Progress | None = None,
                 quarterly: Path | None = None) -> list[ImportResult]:
    """Import the January file and (if given) the I/OCE quarterly updates, in one transaction.

    The updates mean nothing without the file they amend, so both versions
    are written together (like the ICD-10-CM addenda); one result each."""
    from mailbot.codes.importers import hcpcs_quarterly
    from mailbot.codes.importers.derived_csv import manifest

    checksum = sha256_of(path)
    version = version_of(path)
    update = manifest(quarterly.parent) if quarterly else None
    update_sum = sha256_of(quarterly) if quarterly else ""
    update_version = f"{_quarter_name(update)} (I/OCE {update['latest_ioce_version']})" if update else ""
    if already_imported(session, KIND, checksum) and (not quarterly or already_imported(session, KIND, update_sum)):
        results = [ImportResult(KIND, version, source=str(path), skipped=True)]
        if quarterly:
            results.append(ImportResult(KIND, update_version, source=str(quarterly), skipped=True))
        return results
    if progress:
        progress("HCPCS Level II", 0, 0)
    codes, modifiers = parse_hcpcs(path)
    new: list[dict] = []
    update_counts: dict = {}
    if quarterly and update:
        first = date.fromisoformat(update["quarters"][min(update["quarters"], key=int)]["start"])
        new, update_counts = hcpcs_quarterly.merge(codes, quarterly, update["latest_quarter"], first)
    drop_kind(session, KIND, [CodeEntry])
    year = int(version[:4]) if version[:4].isdigit() else None
    vid = add_version(session, kind=KIND, version=version, source=f"CMS HCPCS Level II: {path.name}",
                      effective_from=date(year, 1, 1) if year else None, effective_to=None,
                      row_count=len(codes) + len(modifiers), checksum=checksum,
                      counts={"codes": len(codes), "modifiers": len(modifiers)})
    rows = [{**row, "version_id": vid} for row in [*codes, *modifiers]]
    results = [ImportResult(KIND, version, source=str(path), rows=len(rows),
                            counts={"codes": len(codes), "modifiers": len(modifiers)})]
    if quarterly and update:
        # dated from the newest quarter, so answers for later dates cite it (and the
        # staleness warning starts only after its year)
        qid = add_version(session, kind=KIND, version=update_version,
                          source=f"pyoce {update['pyoce_version']} (I/OCE quarterly HCPCS, short descriptors): "
                                 f"{quarterly.name}",
                          effective_from=date.fromisoformat(update["latest_quarter_start"]), effective_to=None,
                          row_count=len(new), checksum=update_sum,
                          counts={**update_counts, "wheel_sha256": update["wheel_sha256"]})
        rows += [{**row, "version_id": qid} for row in new]
        results.append(ImportResult(KIND, update_version, source=str(quarterly), rows=len(new), counts=update_counts))
    bulk_insert(session, CodeEntry, rows, progress, "HCPCS Level II", len(rows))
    return results


def _quarter_name(update: dict) -> str:
    start = date.fromisoformat(update["latest_quarter_start"])
    return f"{start.year} {start:%b}"
