"""Importers: full fidelity, idempotent, and all-or-nothing on bad input."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from mailbot.codes.importers import CodeImportError, import_sets
from mailbot.codes.importers.cpt import import_cpt
from mailbot.codes.importers.hcpcs import import_hcpcs
from mailbot.codes.importers.icd10cm import import_icd10cm
from mailbot.codes.importers.mue import import_mue
from mailbot.codes.importers.ncci import import_ptp
from mailbot.codes.importers.pfs import import_pfs
from mailbot.codes.lookup import lookup
from mailbot.models.codes import CodeEntry, CodeSetVersion, MueLimit, NcciEdit, RvuEntry
from tests.codes.conftest import NCCI_DIR


def count(db, model, *where) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def codes_of(db, system="icd10cm") -> dict[str, CodeEntry]:
    with db.read() as s:
        return {r.code: r for r in s.execute(select(CodeEntry).where(CodeEntry.system == system)).scalars()}


def test_tabular_keeps_notes_and_expands_seventh_characters(fresh_db, tabular):
    with fresh_db.session() as s:
        import_icd10cm(s, tabular, None)
    rows = codes_of(fresh_db)
    assert rows["E11"].billable is False and rows["E11.22"].billable is True
    assert rows["E11"].notes["includes"] == ["diabetes NOS"]
    assert rows["E11"].notes["excludes1"] == ["type 1 diabetes mellitus (E10.-)"]
    assert rows["E11.22"].notes["inclusion_terms"] == ["Synthetic inclusion term for testing"]
    assert rows["E11.22"].parent == "E11.2"
    # the 6-character stem becomes a header; the 7th-character codes are the billable ones
    assert rows["S52.521"].billable is False
    assert rows["S52.521A"].billable and rows["S52.521A"].title.endswith("initial encounter for closed fracture")
    assert rows["S52.521D"].parent == "S52.521"
    assert rows["S52.9XXA"].billable  # short codes take the X placeholder
    assert rows["S52"].notes["seventh_characters"]["A"] == "initial encounter for closed fracture"


def test_addenda_make_codes_valid_by_date_of_service(fresh_db, tabular, addenda):
    with fresh_db.session() as s:
        results = import_icd10cm(s, tabular, addenda)
    assert [r.version for r in results] == ["FY2026 (April 1, 2026 update)", "FY2027"]
    before, after = date(2026, 9, 30), date(2026, 10, 1)
    with fresh_db.read() as s:
        old = {c.code: c for c in lookup(s, ["E11.29", "E11.23", "E11.22", "E11.9"], before)}
        new = {c.code: c for c in lookup(s, ["E11.29", "E11.23", "E11.22", "E11.9"], after)}
    assert old["E11.29"].status == "ok" and new["E11.29"].status == "terminated"
    assert old["E11.23"].status == "not_yet_valid" and new["E11.23"].status == "ok"
    assert old["E11.22"].status == "ok" and new["E11.22"].status == "not_billable"
    assert old["E11.9"].title == "Type 2 diabetes mellitus without complications"
    assert new["E11.9"].title == "Type 2 diabetes mellitus without any complications"
    assert old["E11.9"].version.startswith("ICD-10-CM FY2026") and new["E11.9"].version == "ICD-10-CM FY2027"
    assert new["E11.23"].parent == {"code": "E11.2", "title": "Type 2 diabetes mellitus with kidney complications"}


def test_reimporting_the_same_files_changes_nothing(fresh_db, tabular, addenda):
    with fresh_db.session() as s:
        import_icd10cm(s, tabular, addenda)
    with fresh_db.read() as s:
        versions = [(v.id, v.checksum) for v in s.execute(select(CodeSetVersion)).scalars()]
    rows = count(fresh_db, CodeEntry)
    with fresh_db.session() as s:
        again = import_icd10cm(s, tabular, addenda)
    assert all(r.skipped for r in again)
    with fresh_db.read() as s:
        assert [(v.id, v.checksum) for v in s.execute(select(CodeSetVersion)).scalars()] == versions
    assert count(fresh_db, CodeEntry) == rows


def test_addenda_for_another_base_leave_the_loaded_version_untouched(fresh_db, tabular, addenda):
    with fresh_db.session() as s:
        import_icd10cm(s, tabular, addenda)
    rows = count(fresh_db, CodeEntry)
    (addenda / "deleted.csv").write_text(
        "code,codeDotted,wasBillable,category,shortTitle,longTitle\nZ9999,Z99.99,true,Z99,x,not in this base\n")
    with pytest.raises(CodeImportError, match="Z99.99.*not in the FY2026 tabular"):
        with fresh_db.session() as s:
            import_icd10cm(s, tabular, addenda)
    assert count(fresh_db, CodeEntry) == rows
    assert count(fresh_db, CodeSetVersion) == 2


def test_truncated_tabular_is_rejected_with_nothing_written(fresh_db, tabular):
    tabular.write_text(tabular.read_text()[:1500])
    with pytest.raises(CodeImportError, match="not a well-formed ICD-10-CM tabular XML"):
        with fresh_db.session() as s:
            import_icd10cm(s, tabular, None)
    assert count(fresh_db, CodeEntry) == 0 and count(fresh_db, CodeSetVersion) == 0


def test_hcpcs_fixed_width_records_with_continuations(fresh_db, small_hcpcs):
    with fresh_db.session() as s:
        (result,) = import_hcpcs(s, small_hcpcs)
    assert result.counts["modifiers"] > 0 and result.counts["codes"] > 0
    mods = codes_of(fresh_db, "modifier")
    assert "A1" in mods and mods["A1"].title == "Dressing for one wound"
    codes = codes_of(fresh_db, "hcpcs")
    first = next(iter(codes.values()))
    assert first.valid_from.year > 1900 and first.notes["action"]


def test_truncated_hcpcs_file_names_the_line_and_writes_nothing(fresh_db, small_hcpcs):
    data = small_hcpcs.read_bytes()
    small_hcpcs.write_bytes(data[: len(data) - 100])  # cut inside the last record
    with pytest.raises(CodeImportError, match=r":\d+: record is \d+ characters, expected 320"):
        with fresh_db.session() as s:
            import_hcpcs(s, small_hcpcs)
    assert count(fresh_db, CodeEntry) == 0 and count(fresh_db, CodeSetVersion) == 0


def test_wrong_file_to_wrong_importer_is_refused(fresh_db, small_hcpcs, small_pfs):
    with pytest.raises(CodeImportError, match="not a PFS RVU file"):
        with fresh_db.session() as s:
            import_pfs(s, small_hcpcs)
    with pytest.raises(CodeImportError, match="expected 320"):
        with fresh_db.session() as s:
            import_hcpcs(s, small_pfs)
    with pytest.raises(CodeImportError, match="not an NCCI PTP file"):
        with fresh_db.session() as s:
            import_ptp(s, NCCI_DIR / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv")
    with pytest.raises(CodeImportError, match="not a CMS MUE file"):
        with fresh_db.session() as s:
            import_mue(s, NCCI_DIR / "ccipra_v321r0_f1_practitioner.txt")
    assert count(fresh_db, CodeSetVersion) == 0


def test_pfs_rows_keep_rvus_indicators_and_conversion_factor(fresh_db, small_pfs):
    with fresh_db.session() as s:
        result = import_pfs(s, small_pfs)
    assert result.version == "CY2025" and result.rows == 39  # 40 lines: header + 39
    with fresh_db.read() as s:
        row = s.execute(select(RvuEntry).where(RvuEntry.code == "A0021")).scalars().one()
    assert row.status == "I" and row.conversion_factor == pytest.approx(32.3465)
    assert row.indicators["pctc"] == "9" and row.global_days == "XXX"


def test_ncci_tables_by_setting_and_replaced_by_a_new_quarter(fresh_db, tmp_path):
    with fresh_db.session() as s:
        prac = import_ptp(s, NCCI_DIR / "ccipra_v321r0_f1_practitioner.txt")
        hosp = import_ptp(s, NCCI_DIR / "ccioph_v321r0_f1_hospital.txt")
    assert (prac.setting, prac.rows, hosp.setting, hosp.rows) == ("practitioner", 9, "hospital", 2)
    with fresh_db.read() as s:
        edit = s.execute(select(NcciEdit).where(NcciEdit.column2 == "36416")).scalars().one()
    assert edit.deleted == date(2025, 1, 1) and edit.modifier_indicator == "9"
    next_quarter = tmp_path / "ccipra_v322r0_practitioner.txt"
    lines = (NCCI_DIR / "ccipra_v321r0_f1_practitioner.txt").read_text().splitlines()
    next_quarter.write_text("\n".join(lines[:5]) + "\n")
    with fresh_db.session() as s:
        import_ptp(s, next_quarter)
    assert count(fresh_db, NcciEdit, NcciEdit.setting == "practitioner") == 1
    assert count(fresh_db, NcciEdit, NcciEdit.setting == "hospital") == 2


def test_truncated_ncci_line_and_unknown_setting_are_refused(fresh_db, tmp_path):
    text = (NCCI_DIR / "ccipra_v321r0_f1_practitioner.txt").read_text()
    cut = tmp_path / "ccipra_cut_practitioner.txt"
    cut.write_text(text.rstrip()[:-60])
    with pytest.raises(CodeImportError, match="truncated"):
        with fresh_db.session() as s:
            import_ptp(s, cut)
    anon = tmp_path / "edits.txt"
    anon.write_text(text.replace("Practitioner", "Some"))
    with pytest.raises(CodeImportError, match="practitioner or the hospital"):
        with fresh_db.session() as s:
            import_ptp(s, anon)
    assert count(fresh_db, NcciEdit) == 0


def test_mue_with_multiline_notice_and_truncated_quote(fresh_db, tmp_path):
    with fresh_db.session() as s:
        result = import_mue(s, NCCI_DIR / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv")
    assert (result.setting, result.rows) == ("practitioner", 4)
    with fresh_db.read() as s:
        j1010 = s.execute(select(MueLimit).where(MueLimit.code == "J1010")).scalars().one()
    assert j1010.value == 80 and j1010.adjudication.startswith("3 ")
    broken = tmp_path / "MCR_MUE_Outpatient_broken.csv"
    broken.write_text((NCCI_DIR / "MCR_MUE_OutpatientHospitalServices_Eff_01-01-2026.csv").read_text()[:200])
    with pytest.raises(CodeImportError, match="malformed CSV|no 'HCPCS/CPT Code' header"):
        with fresh_db.session() as s:
            import_mue(s, broken)
    assert count(fresh_db, MueLimit) == 4


def test_licensed_cpt_file_gives_titles(fresh_db, tmp_path):
    licensed = tmp_path / "cpt_licensed_2026.txt"
    licensed.write_text("code\tdescriptor\n# synthetic, not AMA text\n99213\tSynthetic descriptor for 99213\n"
                        "0001F\tSynthetic descriptor for 0001F\n")
    with fresh_db.session() as s:
        assert import_cpt(s, licensed).rows == 2
    with fresh_db.read() as s:
        card = lookup(s, ["99213"])[0]
    assert card.found and card.title == "Synthetic descriptor for 99213" and card.licence_note is None
    bad = tmp_path / "cpt_bad.csv"
    bad.write_text("99213,Fine\nABCDE,Not a code\n")
    with pytest.raises(CodeImportError, match="data line 2"):
        with fresh_db.session() as s:
            import_cpt(s, bad)


def test_import_sets_reports_a_missing_file_before_writing(fresh_db, tmp_path):
    with pytest.raises(CodeImportError, match="no such file"):
        import_sets(fresh_db, source=None, ncci=[tmp_path / "nope.txt"])
    assert count(fresh_db, CodeSetVersion) == 0
