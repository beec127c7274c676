"""ICD-10-CM history FY2016-FY2026: validity intervals from the annual change lists.

The shipped lists (``data/codesets/icd10cm-history``, CC0, see its README) hold
what changed each fiscal year Y (effective (Y-1)-10-01): codes added, deleted,
retitled, and turned from billable into header (or back).  Starting from the
FY2026 tabular rows we walk back one year at a time (undo Y's additions,
restore Y's deletions, put back Y's previous titles and billable flags) to get
the full code list of every year since FY2016, then compress each code's years
into validity-interval rows: one row per run of years with the same title and
billable flag.  The FY2026 row of a code keeps its tabular notes and simply
starts earlier; older rows of retitled or re-flagged codes get their own rows.

FY2027 is not taken from these lists: the FY2027 addenda importer
(:mod:`.icd10cm`) applies it on top, with its excludes notes.  Mid-year CMS
updates are labelled with the next October in the lists; :data:`MIDYEAR`
moves the start dates we know of (README "Mid-year caveat").
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from mailbot.codes.importers.base import CodeImportError, read_csv, read_text, sha256_of

FIRST_FY, BASE_FY, LAST_FY = 2016, 2026, 2027
FILES = {
    "added.csv": ["fiscalYear", "code", "codeDotted", "billable", "category", "shortTitle", "longTitle"],
    "deleted.csv": ["fiscalYear", "code", "codeDotted", "wasBillable", "category", "shortTitle", "longTitle"],
    "revised.csv": ["fiscalYear", "code", "codeDotted", "billable", "previousLongTitle", "newLongTitle",
                    "previousShortTitle", "newShortTitle"],
    "billable-status-changes.csv": ["fiscalYear", "code", "codeDotted", "previousBillable", "newBillable",
                                    "direction", "longTitle"],
}
SUMMARY = ("summary.csv", {"added.csv": "added", "deleted.csv": "deleted", "revised.csv": "revisedTitles",
                           "billable-status-changes.csv": "billableStatusChanges"})
SOURCE = "ICD-10-CM annual change lists FY2017-FY2027 (makevision/icd10cm-open-data, CC0)"

# (code, fiscal year of the list row) -> the real effective date of a mid-year
# CMS update; the lists only diff October files (history README, "Mid-year caveat").
MIDYEAR: dict[tuple[str, int], date] = {
    ("U07.0", 2021): date(2020, 4, 1), ("U07.1", 2021): date(2020, 4, 1),
    **{(code, 2022): date(2021, 1, 1) for code in ("J12.82", "M35.81", "M35.89", "Z11.52", "Z20.822", "Z86.16",
                                                   "M35.8")},
}
_DOTTED = re.compile(r"^[A-Z][0-9A-Z][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_BOOLS = {"true": True, "false": False}


def fy_start(year: int) -> date:
    return date(year - 1, 10, 1)


def fy_end(year: int) -> date:
    return date(year, 9, 30)


def fiscal_year(on: date) -> int:
    """The ICD-10-CM fiscal year of a date (October starts the next year's set)."""
    return on.year + 1 if on.month >= 10 else on.year


@dataclass
class Change:
    year: int
    code: str
    row: dict[str, str]
    where: str  # file:line, for errors


@dataclass
class History:
    changes: dict[str, list[Change]]  # file name -> rows (FY2027 excluded)
    checksum: str
    directory: Path


def read_history(directory: Path) -> History:
    """Read and check the four lists (every bad line is named by file and line)."""
    if not directory.is_dir():
        raise CodeImportError(f"{directory}: ICD-10-CM history folder not found")
    changes: dict[str, list[Change]] = {}
    per_year: dict[str, dict[int, int]] = {}
    for name, header in FILES.items():
        path = directory / name
        rows = _read_rows(path, header)
        out = []
        counts: dict[int, int] = {}
        for number, row in rows:
            where = f"{path}:{number}"
            year = _year(row["fiscalYear"], where)
            code = row["codeDotted"]
            if not _DOTTED.match(code) or code.replace(".", "") != row["code"]:
                raise CodeImportError(f"{where}: {row['code']!r}/{code!r} is not an ICD-10-CM code in both forms")
            for key in ("billable", "wasBillable", "previousBillable", "newBillable"):
                if key in row and row[key] not in _BOOLS:
                    raise CodeImportError(f"{where}: {key} is {row[key]!r}, expected true or false")
            counts[year] = counts.get(year, 0) + 1
            if year <= BASE_FY:
                out.append(Change(year, code, row, where))
        changes[name] = out
        per_year[name] = counts
    _check_summary(directory, per_year)
    return History(changes, sha256_of(*[directory / n for n in sorted(FILES)]), directory)


def _read_rows(path: Path, header: list[str]) -> list[tuple[int, dict[str, str]]]:
    if not path.exists():
        raise CodeImportError(f"{path}: missing (ICD-10-CM history needs {', '.join(FILES)})")
    return read_csv(path, header)


def _year(value: str, where: str) -> int:
    if not value.isdigit() or not FIRST_FY < int(value) <= LAST_FY:
        raise CodeImportError(f"{where}: fiscalYear {value!r} is not a year FY{FIRST_FY + 1}-FY{LAST_FY}")
    return int(value)


def _check_summary(directory: Path, per_year: dict[str, dict[int, int]]) -> None:
    name, columns = SUMMARY
    path = directory / name
    if not path.exists():
        return
    rows = list(csv.DictReader(io.StringIO(read_text(path))))
    for number, row in enumerate(rows, start=2):
        year = int(row.get("fiscalYear") or 0)
        for file, column in columns.items():
            expected = row.get(column)
            if expected and expected.isdigit() and int(expected) != per_year[file].get(year, 0):
                raise CodeImportError(f"{path}:{number}: FY{year} {column} = {expected} but {file} has "
                                      f"{per_year[file].get(year, 0)} rows for FY{year} (truncated or wrong file?)")


def walk_back(base: dict[str, tuple[str, bool]], history: History) -> Iterator[tuple[int, dict[str, tuple[str, bool]]]]:
    """Each fiscal year's ``code -> (title, billable)``, from FY2026 back to FY2016
    (yielded one year at a time: only two years are held in memory).

    A list row that does not fit the year it is applied to (a deleted code
    still present, an added code absent) means a wrong base or a damaged
    file: the error names the row."""
    by_year: dict[str, dict[int, list[Change]]] = {
        name: {} for name in FILES}
    for name, rows in history.changes.items():
        for change in rows:
            by_year[name].setdefault(change.year, []).append(change)
    yield BASE_FY, base
    state = base
    for year in range(BASE_FY, FIRST_FY, -1):
        prior = dict(state)
        for c in by_year["added.csv"].get(year, []):
            if prior.pop(c.code, None) is None:
                raise CodeImportError(f"{c.where}: {c.code} added in FY{year} but not in the FY{year} list "
                                      "(wrong base or damaged file)")
        for c in by_year["deleted.csv"].get(year, []):
            if c.code in prior:
                raise CodeImportError(f"{c.where}: {c.code} deleted in FY{year} but still in the FY{year} list "
                                      "(wrong base or damaged file)")
            prior[c.code] = (c.row["longTitle"], _BOOLS[c.row["wasBillable"]])
        for c in by_year["revised.csv"].get(year, []):
            if c.code not in prior:
                raise CodeImportError(f"{c.where}: {c.code} revised in FY{year} but not in the FY{year - 1} list")
            if c.row["previousLongTitle"] != c.row["newLongTitle"]:
                prior[c.code] = (c.row["previousLongTitle"], prior[c.code][1])
        for c in by_year["billable-status-changes.csv"].get(year, []):
            if c.code not in prior:
                raise CodeImportError(f"{c.where}: {c.code} changed billable status in FY{year} but is not in "
                                      f"the FY{year - 1} list")
            prior[c.code] = (prior[c.code][0], _BOOLS[c.row["previousBillable"]])
        yield year - 1, prior
        state = prior


@dataclass
class Interval:
    code: str
    title: str
    billable: bool
    first_fy: int
    last_fy: int  # inclusive
    valid_from: date


def intervals(years: Iterable[tuple[int, dict[str, tuple[str, bool]]]]) -> tuple[dict[str, list[Interval]], dict]:
    """Each code's runs of fiscal years with the same (title, billable), oldest
    first, from the years newest first; and each year's code and billable counts."""
    codes: dict[str, list[Interval]] = {}  # newest run first while walking back
    counts: dict[str, dict[str, int]] = {}
    for year, state in years:
        billable_count = 0
        for code, (title, billable) in state.items():
            billable_count += billable
            runs = codes.get(code)
            oldest = runs[-1] if runs else None
            if oldest and oldest.first_fy == year + 1 and oldest.title == title and oldest.billable == billable:
                oldest.first_fy = year
            elif runs is None:
                codes[code] = [Interval(code, title, billable, year, year, fy_start(year))]
            else:
                runs.append(Interval(code, title, billable, year, year, fy_start(year)))
        counts[f"FY{year}"] = {"codes": len(state), "billable": billable_count}
    for runs in codes.values():
        runs.reverse()
        for run in runs:
            run.valid_from = MIDYEAR.get((run.code, run.first_fy), fy_start(run.first_fy))
    return codes, counts


def end_of(runs: list[Interval], i: int) -> date:
    """The inclusive last day of run ``i``: the day before the next run starts, or its last FY's end."""
    run = runs[i]
    if i + 1 < len(runs) and runs[i + 1].first_fy == run.last_fy + 1:
        return runs[i + 1].valid_from - timedelta(days=1)
    return fy_end(run.last_fy)


def history_rows(rows: dict[str, dict], history: History, version_ids: dict[int, int]) -> tuple[list[dict], dict]:
    """Extend the FY2026 ``rows`` back in time and return the older rows.

    ``rows`` (dotted code -> FY2026 tabular row) is changed in place: each
    row's ``valid_from`` and ``version_id`` move to the start of its run.
    ``version_ids`` maps a fiscal year to its ``code_set_version`` id.
    Returns ``(older rows, per-year counts)``."""
    base = {code: (row["title"], row["billable"]) for code, row in rows.items()}
    runs_by_code, counts = intervals(walk_back(base, history))
    deleted_short = {c.code: c.row["shortTitle"] for c in history.changes["deleted.csv"]}
    known = set(runs_by_code)
    older: list[dict] = []
    for code, runs in runs_by_code.items():
        current = rows.get(code)
        for i, run in enumerate(runs):
            vid = version_ids[fiscal_year(run.valid_from)]
            if current is not None and run.last_fy == BASE_FY:
                current["valid_from"], current["version_id"] = run.valid_from, vid
                continue
            older.append({
                "system": "icd10cm", "code": code, "title": run.title,
                "short_title": "" if current else deleted_short.get(code, "")[:200],
                "billable": run.billable, "parent": current["parent"] if current else _parent(code, known),
                "valid_from": run.valid_from, "valid_to": end_of(runs, i), "version_id": vid,
                # the tabular of FY2026 is the only one shipped: its notes stand for the older years too
                "notes": dict(current["notes"]) if current else {},
            })
    return older, counts


def _parent(code: str, known: set[str]) -> str:
    bare = code.replace(".", "")
    for cut in range(len(bare) - 1, 2, -1):
        candidate = f"{bare[:3]}.{bare[3:cut]}" if cut > 3 else bare[:3]
        if candidate in known:
            return candidate
    return ""
