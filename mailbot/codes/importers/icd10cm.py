"""Import ICD-10-CM: the FY2026 tabular (April 1, 2026 update) and the FY2027 addenda.

FY2026 rows are valid from 2025-10-01; the FY2027 addenda (effective
2026-10-01) close deleted codes on 2026-09-30, add new codes from
2026-10-01, and split revised titles and billable-status changes into an old
row (to 2026-09-30) and a new one (from 2026-10-01).  Both versions are
imported in one transaction, because the addenda mean nothing without the
base they amend.
"""

from __future__ import annotations

import json
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
    read_csv,
    read_text,
    sha256_of,
)
from mailbot.codes.importers.icd10cm_history import (
    BASE_FY,
    FIRST_FY,
    SOURCE,
    fy_end,
    fy_start,
    history_rows,
    read_history,
)
from mailbot.codes.importers.icd10cm_tabular import parse_tabular, read_code_list, tabular_version
from mailbot.models.codes import CodeEntry

KIND = "icd10cm"
FY2026_START = date(2025, 10, 1)
FY2026_END = date(2026, 9, 30)
FY2027_START = date(2026, 10, 1)
ADDENDA_FILES = {
    "added.csv": ["code", "codeDotted", "billable", "category", "shortTitle", "longTitle"],
    "deleted.csv": ["code", "codeDotted", "wasBillable", "category", "shortTitle", "longTitle"],
    "revised.csv": ["code", "codeDotted", "billable", "previousLongTitle", "newLongTitle",
                    "previousShortTitle", "newShortTitle"],
    "billable-status-changes.csv": ["code", "codeDotted", "previousBillable", "newBillable", "direction",
                                    "longTitle"],
}
EXCLUDES_FILES = {"fy2027-excludes1.csv": "excludes1", "fy2027-excludes2.csv": "excludes2"}


def shipped_tabular() -> Path:
    import importlib.util

    # find the package without importing it: importing it parses the whole XML
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        raise CodeImportError("the simple-icd-10-cm package (ICD-10-CM FY2026 tabular) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "icd10c-tabular-April-1-2026.xml"


def import_icd10cm(session: Session, tabular: Path, addenda_dir: Path | None,
                   progress: Progress | None = None, history_dir: Path | None = None) -> list[ImportResult]:
    """Import the tabular, (if given) the FY2027 addenda and the FY2016-FY2025
    history; returns one result per version.  All in the caller's one transaction."""
    base_sum = sha256_of(tabular)
    addenda = _read_addenda(addenda_dir) if addenda_dir else None
    addenda_sum = sha256_of(*[addenda_dir / n for n in sorted(ADDENDA_FILES)]) if addenda_dir else ""
    history = read_history(history_dir) if history_dir else None
    base_version = _base_version(tabular)
    if already_imported(session, KIND, base_sum) and (not addenda_dir or already_imported(session, KIND, addenda_sum)) \
            and (not history or already_imported(session, KIND, history.checksum)):
        results = [ImportResult(KIND, base_version, source=str(tabular), skipped=True)]
        if addenda_dir:
            results.append(ImportResult(KIND, "FY2027", source=str(addenda_dir), skipped=True))
        if history:
            results.append(ImportResult(KIND, f"FY{FIRST_FY}-FY{BASE_FY - 1}", source=str(history_dir), skipped=True))
        return results

    code_list = read_code_list(tabular.with_name("code-list-April-2026.txt"))
    if progress:
        progress("ICD-10-CM tabular", 0, 0)
    rows: dict[str, dict] = {}
    for item in parse_tabular(tabular, code_list):
        rows[item.code] = {
            "system": KIND, "code": item.code, "title": item.title, "short_title": "",
            "billable": item.billable, "parent": item.parent, "valid_from": FY2026_START,
            "valid_to": None, "notes": item.notes,
        }
    drop_kind(session, KIND, [CodeEntry])
    v26 = add_version(session, kind=KIND, version=base_version, source=f"simple-icd-10-cm 1.5.0: {tabular.name}",
                      effective_from=FY2026_START, effective_to=FY2026_END if addenda else None,
                      row_count=len(rows), checksum=base_sum,
                      counts={"codes": len(rows), "billable": sum(r["billable"] for r in rows.values())})
    for row in rows.values():
        row["version_id"] = v26
    results = [ImportResult(KIND, base_version, source=str(tabular), rows=len(rows),
                            counts={"billable": sum(r["billable"] for r in rows.values())})]
    older: list[dict] = []
    if history:
        older, history_result = _import_history(session, rows, history, v26)
        results.append(history_result)
    new_rows: list[dict] = []
    if addenda:
        v27 = add_version(session, kind=KIND, version="FY2027", source=f"CMS FY2027 addenda: {addenda_dir}",
                          effective_from=FY2027_START, effective_to=None, row_count=0, checksum=addenda_sum)
        new_rows, counts = _apply_addenda(rows, addenda, v27)
        from mailbot.models.codes import CodeSetVersion

        version = session.get(CodeSetVersion, v27)
        version.row_count = len(new_rows)
        version.counts = counts
        results.append(ImportResult(KIND, "FY2027", source=str(addenda_dir), rows=len(new_rows), counts=counts))
    total = len(rows) + len(new_rows) + len(older)
    bulk_insert(session, CodeEntry, [*rows.values(), *older, *new_rows], progress, "ICD-10-CM codes", total)
    return results


def _import_history(session: Session, rows: dict[str, dict], history, v26: int) -> tuple[list[dict], ImportResult]:
    """One version row per fiscal year FY2016-FY2025, then the older code rows."""
    from collections import Counter

    from mailbot.models.codes import CodeSetVersion

    ids = {BASE_FY: v26}
    for year in range(FIRST_FY, BASE_FY):
        ids[year] = add_version(session, kind=KIND, version=f"FY{year}",
                                source=f"{SOURCE}: {history.directory.name}",
                                effective_from=fy_start(year), effective_to=fy_end(year), row_count=0,
                                checksum=history.checksum)
    older, counts = history_rows(rows, history, ids)
    per_version = Counter(r["version_id"] for r in [*rows.values(), *older])
    for year, vid in ids.items():
        version = session.get(CodeSetVersion, vid)
        # row_count is the size of that year's code list (as for FY2026); how many
        # code_entry rows start in the year is in counts
        if year < BASE_FY:
            version.row_count = counts[f"FY{year}"]["codes"]
            version.counts = {**counts[f"FY{year}"], "rows_starting": per_version.get(vid, 0)}
        else:
            version.counts = {**version.counts, "rows_starting": per_version.get(vid, 0)}
    return older, ImportResult(KIND, f"FY{FIRST_FY}-FY{BASE_FY - 1}", source=str(history.directory),
                               rows=len(older), counts={"years": BASE_FY - FIRST_FY, "older_rows": len(older)})


def _base_version(tabular: Path) -> str:
    """``FY2026 (April 1, 2026 update)`` from the tabular's <version> and file name."""
    import re

    fiscal = tabular_version(tabular) or "?"
    m = re.search(r"([A-Z][a-z]+)-(\d{1,2})-(\d{4})", tabular.name)
    update = f" ({m.group(1)} {m.group(2)}, {m.group(3)} update)" if m else ""
    return f"FY{fiscal}{update}"


def _read_csv(path: Path, header: list[str]) -> list[dict[str, str]]:
    return [row for _, row in read_csv(path, header)]


def _read_addenda(directory: Path) -> dict[str, list[dict[str, str]]]:
    data = {name: _read_csv(directory / name, header) for name, header in ADDENDA_FILES.items()}
    summary_path = directory / "summary.json"
    if summary_path.exists():
        try:
            summary = json.loads(read_text(summary_path))
        except json.JSONDecodeError as exc:
            raise CodeImportError(f"{summary_path}: not JSON ({exc})") from None
        expected = {"added.csv": "added", "deleted.csv": "deleted", "revised.csv": "revisedTitles",
                    "billable-status-changes.csv": "billableStatusChanges"}
        for name, key in expected.items():
            if key in summary and summary[key] != len(data[name]):
                raise CodeImportError(f"{directory / name}: {len(data[name])} rows but summary.json says "
                                      f"{summary[key]} (truncated or wrong file?)")
    excludes: dict[str, dict[str, list[str]]] = {}
    for name, key in EXCLUDES_FILES.items():
        path = directory / name
        if not path.exists():
            continue
        header = ["chapter", "code", "codeTitle", "noteType", "noteText", "referencedCodes", "referencedCategories"]
        for row in _read_csv(path, header):
            excludes.setdefault(row["code"], {}).setdefault(key, []).append(row["noteText"])
    data["excludes"] = excludes  # type: ignore[assignment]
    return data


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "y")


def _apply_addenda(rows: dict[str, dict], addenda: dict, version_id: int) -> tuple[list[dict], dict]:
    excludes = addenda["excludes"]
    changes: dict[str, dict] = {}
    for row in addenda["deleted.csv"]:
        code = row["codeDotted"]
        if code not in rows:
            raise CodeImportError(f"FY2027 addenda delete {code}, which is not in the FY2026 tabular (wrong base?)")
        rows[code]["valid_to"] = FY2026_END
    for row in addenda["revised.csv"]:
        code = row["codeDotted"]
        if code not in rows:
            raise CodeImportError(f"FY2027 addenda revise {code}, which is not in the FY2026 tabular (wrong base?)")
        changes.setdefault(code, {}).update(title=row["newLongTitle"], short_title=row["newShortTitle"])
    for row in addenda["billable-status-changes.csv"]:
        code = row["codeDotted"]
        if code not in rows:
            raise CodeImportError(f"FY2027 addenda change {code}, which is not in the FY2026 tabular (wrong base?)")
        changes.setdefault(code, {}).update(billable=_truthy(row["newBillable"]))
    new_rows = []
    for code, change in changes.items():
        old = rows[code]
        old["valid_to"] = FY2026_END
        new_rows.append({**old, **change, "valid_from": FY2027_START, "valid_to": None, "version_id": version_id})
    known = set(rows)
    added = [row["codeDotted"] for row in addenda["added.csv"]]
    known.update(added)
    for row in addenda["added.csv"]:
        code = row["codeDotted"]
        if code in rows and rows[code]["valid_to"] is None:
            raise CodeImportError(f"FY2027 addenda add {code}, which already exists in FY2026 (wrong base?)")
        parent = _parent(code, known)
        notes = {k: v for k, v in excludes.get(code, {}).items()}
        new_rows.append({
            "system": KIND, "code": code, "title": row["longTitle"], "short_title": row["shortTitle"],
            "billable": _truthy(row["billable"]), "parent": parent, "valid_from": FY2027_START,
            "valid_to": None, "version_id": version_id, "notes": notes,
        })
    counts = {"added": len(added), "deleted": len(addenda["deleted.csv"]), "revised": len(addenda["revised.csv"]),
              "billable_changes": len(addenda["billable-status-changes.csv"])}
    return new_rows, counts


def _parent(code: str, known: set[str]) -> str:
    bare = code.replace(".", "")
    for cut in range(len(bare) - 1, 2, -1):
        candidate = f"{bare[:3]}.{bare[3:cut]}" if cut > 3 else bare[:3]
        if candidate in known:
            return candidate
    return bare[:3] if bare[:3] in known and bare[:3] != code else ""
