"""Importers of the shipped derived files: a file in the wrong layout is refused
naming the file and line, and nothing of its set changes (one transaction per set).

Small files in the shipped layouts are written here, next to a copy of the
real manifest, so these tests run on a fresh database in a second."""

from __future__ import annotations

import json
import lzma
import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.codes.edits import check
from mailbot.codes.importers import CodeImportError
from mailbot.codes.importers.code_flags import flag_set, import_flags
from mailbot.codes.importers.ncci import import_ptp
from mailbot.codes.importers.ncci_shipped import import_shipped_ptp
from mailbot.config import REPO_ROOT
from mailbot.models.codes import CodeFlag, CodeSetVersion, NcciEdit
from tests.codes.conftest import NCCI_DIR

SHIPPED = REPO_ROOT / "data" / "codesets"
PTP_HEADER = "column1,column2,modifier_indicator,effective,deleted\n"


def count(db, model, *where) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def ptp_file(folder: Path, body: str, header: str = PTP_HEADER) -> Path:
    folder.mkdir(exist_ok=True)
    shutil.copy(SHIPPED / "pyoce" / "manifest.json", folder / "manifest.json")
    path = folder / "ncci-hospital-ptp.csv.xz"
    path.write_bytes(lzma.compress((header + body).encode()))
    return path


GOOD = "29881,29877,0,2019-07-01,\n93000,93005,1,2019-07-01,\n36415,36416,1,2019-07-01,2025-01-01\n"


def test_small_table_in_the_shipped_layout_imports(fresh_db, tmp_path):
    with fresh_db.session() as s:
        result = import_shipped_ptp(s, ptp_file(tmp_path / "a", GOOD))
    assert (result.rows, result.counts["active"]) == (3, 2)
    with fresh_db.read() as s:
        (pair,) = check(s, ["29881", "29877"], date(2026, 6, 1), setting="hospital").pairs
        assert pair["modifier_indicator"] == "0" and pair["version"] == "NCCI PTP, hospital outpatient, April 2026"
        assert check(s, ["36415", "36416"], date(2025, 1, 1), setting="hospital").pairs == []


@pytest.mark.parametrize("body, header, error", [
    (GOOD, "Column1\tColumn2\n", r"ncci-hospital-ptp.csv.xz:1: header .* \(wrong file or layout\)"),
    (GOOD + "29881,29880,7,2019-07-01,\n", PTP_HEADER, r"ncci-hospital-ptp.csv.xz:5: modifier indicator '7'"),
    (GOOD + "29881,2019-07-01,\n", PTP_HEADER, r"ncci-hospital-ptp.csv.xz:5: 3 fields, expected 5"),
    (GOOD + "29881,29880,0,07/01/2019,\n", PTP_HEADER, r"ncci-hospital-ptp.csv.xz:5: .* is not a date"),
])
def test_wrong_layout_names_file_and_line_and_changes_nothing(fresh_db, tmp_path, body, header, error):
    with fresh_db.session() as s:
        import_shipped_ptp(s, ptp_file(tmp_path / "good", GOOD))
    before = count(fresh_db, NcciEdit), count(fresh_db, CodeSetVersion)
    with pytest.raises(CodeImportError, match=error):
        with fresh_db.session() as s:
            import_shipped_ptp(s, ptp_file(tmp_path / "bad", body, header))
    assert (count(fresh_db, NcciEdit), count(fresh_db, CodeSetVersion)) == before == (3, 1)


def test_an_operator_hospital_table_wins_and_is_kept(fresh_db, tmp_path):
    with fresh_db.session() as s:
        import_shipped_ptp(s, ptp_file(tmp_path / "a", GOOD))
    with fresh_db.session() as s:
        import_ptp(s, NCCI_DIR / "ccioph_v321r0_f1_hospital.txt")
    with fresh_db.session() as s:
        again = import_shipped_ptp(s, ptp_file(tmp_path / "a", GOOD))
    assert again.skipped and again.counts["kept_operator_table"] == "ccioph_v321r0_f1_hospital"
    assert count(fresh_db, NcciEdit) == 2  # the operator's synthetic file


def test_practitioner_check_says_its_table_decides_and_is_not_loaded(fresh_db, tmp_path):
    with fresh_db.session() as s:
        import_shipped_ptp(s, ptp_file(tmp_path / "a", GOOD + "20610,99213,1,2019-07-01,2020-01-01\n"))
    with fresh_db.read() as s:
        result = check(s, ["20610", "99213"], date(2026, 6, 1))
    assert result.pairs == [] and result.ncci_table is None
    assert any("practitioner PTP table decides" in n and "not checked" in n for n in result.notes)
    assert all(o["pairs"] == [] for o in result.other_settings)  # the hospital pair ended in 2020


def test_flag_set_with_a_bad_row_names_the_line_and_changes_nothing(fresh_db, tmp_path):
    folder = tmp_path / "dx"
    folder.mkdir()
    shutil.copy(SHIPPED / "dxgroups" / "manifest.json", folder / "manifest.json")
    spec = flag_set("ms_drg")
    good = folder / "good.csv"
    good.write_text("code,level,cc_exclusion_list\nJ96.01,MCC,0998\nN18.4,CC,1334\n")
    with fresh_db.session() as s:
        assert import_flags(s, spec, good).rows == 2
    bad = folder / "bad.csv"
    bad.write_text("code,level,cc_exclusion_list\nJ96.01,MCC,0998\nN18.4,XX,1334\n")
    with pytest.raises(CodeImportError, match=r"bad.csv:3: level 'XX' is not CC or MCC"):
        with fresh_db.session() as s:
            import_flags(s, spec, bad)
    wrong = folder / "wrong.csv"
    wrong.write_text(json.dumps({"not": "a csv"}))
    with pytest.raises(CodeImportError, match=r"wrong.csv:1: header"):
        with fresh_db.session() as s:
            import_flags(s, spec, wrong)
    assert count(fresh_db, CodeFlag) == 2 and count(fresh_db, CodeSetVersion) == 1


def test_sex_edit_fires_only_against_the_stated_sex(fresh_db, tmp_path):
    """The FY2026 I/OCE carries no sex edits (CMS removed them); a table that has one is honoured."""
    from mailbot.codes.dxedits import diagnosis_edits

    folder = tmp_path / "edits"
    folder.mkdir()
    shutil.copy(SHIPPED / "pyoce" / "manifest.json", folder / "manifest.json")
    flags = folder / "icd10cm-edit-flags.csv"
    flags.write_text("code,valid_from,valid_to,lo_age,hi_age,sex,manifestation,code_first,unacceptable_pdx\n"
                     "N80.00,2025-10-01,,0,124,F,,,\n")
    with fresh_db.session() as s:
        import_flags(s, flag_set("icd10cm_edits"), flags)
    with fresh_db.read() as s:
        (conflict,) = diagnosis_edits(s, ["N80.00"], date(2026, 6, 1), sex="male")
        assert conflict.kind == "sex" and "female" in conflict.message and conflict.source == "I/OCE sex edit"
        assert diagnosis_edits(s, ["N80.00"], date(2026, 6, 1), sex="F") == []
        assert diagnosis_edits(s, ["N80.00"], date(2026, 6, 1)) == []
