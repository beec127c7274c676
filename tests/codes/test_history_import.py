"""ICD-10-CM history import: validity intervals per fiscal year from the change
lists, titles as of each year, and all-or-nothing on a bad file."""

from __future__ import annotations

from datetime import date

import pytest

from mailbot.codes.history import status_on
from mailbot.codes.importers import CodeImportError
from mailbot.codes.importers.icd10cm import import_icd10cm
from mailbot.codes.knowledge import load
from mailbot.models.codes import CodeEntry, CodeSetVersion
from tests.codes.test_importers import count


def _load(db):
    with db.read() as s:
        return load(s)


def test_each_code_gets_one_row_per_run_of_years(fresh_db, tabular, addenda, history):
    with fresh_db.session() as s:
        results = import_icd10cm(s, tabular, addenda, history_dir=history)
    assert [r.version for r in results] == ["FY2026 (April 1, 2026 update)", "FY2016-FY2025", "FY2027"]
    k = _load(fresh_db)
    e112 = [(r.valid_from, r.valid_to, r.billable) for r in k.rows_of("icd10cm", "E11.2")]
    assert e112 == [(date(2015, 10, 1), date(2019, 9, 30), True), (date(2019, 10, 1), None, False)]
    # a code unchanged since FY2016 is one row that starts 2015-10-01
    assert [(r.valid_from, r.valid_to) for r in k.rows_of("icd10cm", "E11")] == [(date(2015, 10, 1), None)]
    assert k.catalogue.name(k.rows_of("icd10cm", "E11")[0].version_id) == "ICD-10-CM FY2016"


def test_status_names_the_fiscal_year_and_the_title_of_that_year(fresh_db, tabular, addenda, history):
    with fresh_db.session() as s:
        import_icd10cm(s, tabular, addenda, history_dir=history)
    k = _load(fresh_db)
    old = status_on(k, "icd10cm", "E11.9", date(2024, 1, 15))
    assert old.status == "ok" and old.version == "ICD-10-CM FY2024"
    assert old.title == "Type 2 diabetes mellitus without complication (old wording)"
    assert status_on(k, "icd10cm", "E11.9", date(2025, 1, 15)).title == "Type 2 diabetes mellitus without complications"
    header = status_on(k, "icd10cm", "E11.2", date(2020, 6, 1))
    assert header.status == "not_billable" and "header since FY2020 (2019-10-01)" in header.since
    # every billable child valid that day; the one added with the change says so
    assert [s["code"] for s in header.successors] == ["E11.22", "E11.28"]
    assert "became a header in FY2020" in header.successors[0]["why"]
    assert header.successors[1]["why"] == "billable code under the header E11.2"
    assert status_on(k, "icd10cm", "E11.2", date(2019, 6, 1)).status == "ok"
    gone = status_on(k, "icd10cm", "E11.28", date(2026, 1, 15))
    assert gone.status == "terminated" and "2025-09-30" in gone.message
    assert [s["code"] for s in gone.successors] == ["E11.29"] and "deleted in FY2026" in gone.successors[0]["why"]
    assert status_on(k, "icd10cm", "E11.28", date(2025, 1, 15)).status == "ok"


def test_a_date_before_icd10_is_icd9_era(fresh_db, tabular, history):
    with fresh_db.session() as s:
        import_icd10cm(s, tabular, None, history_dir=history)
    verdict = status_on(_load(fresh_db), "icd10cm", "E11.9", date(2015, 9, 30))
    assert verdict.status == "icd9_era" and "ICD-9-CM" in verdict.message and verdict.valid is None


@pytest.mark.parametrize("name, line, broken, message", [
    ("revised.csv", 2, "2025,E119,E11.9,true,truncated here\n", r"revised\.csv:2: 5 fields, expected 8"),
    ("added.csv", 3, "2026,E1199,E11.99,true,E11,x,not in the tabular\n",
     r"added\.csv:3: E11\.99 added in FY2026 but not in the FY2026 list"),
    ("deleted.csv", 2, "20x6,E1128,E11.28,true,E11,x,y\n", r"deleted\.csv:2: fiscalYear '20x6'"),
    ("billable-status-changes.csv", 2, "2020,E112,E11.2,true,maybe,billable-to-header,x\n",
     r"billable-status-changes\.csv:2: newBillable is 'maybe'"),
])
def test_a_bad_history_file_names_file_and_line_and_changes_nothing(fresh_db, tabular, addenda, history,
                                                                    name, line, broken, message):
    with fresh_db.session() as s:
        import_icd10cm(s, tabular, addenda, history_dir=history)
    rows, versions = count(fresh_db, CodeEntry), count(fresh_db, CodeSetVersion)
    path = history / name
    lines = path.read_text().splitlines(keepends=True)
    if line <= len(lines):
        lines[line - 1] = broken
    else:
        lines.append(broken)
    path.write_text("".join(lines))
    with pytest.raises(CodeImportError, match=message):
        with fresh_db.session() as s:
            import_icd10cm(s, tabular, addenda, history_dir=history)
    assert (count(fresh_db, CodeEntry), count(fresh_db, CodeSetVersion)) == (rows, versions)
    assert status_on(_load(fresh_db), "icd10cm", "E11.2", date(2020, 6, 1)).status == "not_billable"


def test_reimporting_the_same_history_changes_nothing(fresh_db, tabular, addenda, history):
    with fresh_db.session() as s:
        import_icd10cm(s, tabular, addenda, history_dir=history)
    rows = count(fresh_db, CodeEntry)
    with fresh_db.session() as s:
        again = import_icd10cm(s, tabular, addenda, history_dir=history)
    assert all(r.skipped for r in again) and count(fresh_db, CodeEntry) == rows
