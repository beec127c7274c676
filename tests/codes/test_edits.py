"""CHECK: validity, NCCI pairs (column 1/2, modifier indicator, deletion dates), MUEs."""

from __future__ import annotations

from datetime import date

import pytest

from mailbot.codes.edits import CheckError, check

ON = date(2026, 3, 2)


@pytest.fixture
def session(codes_db, db):
    with db.read() as s:
        yield s


def test_pairs_name_column_one_and_the_modifier_rule(session):
    result = check(session, ["99213-25", "20610", "20604", "E11.22"], ON).to_dict()
    pairs = {(p["column1"], p["column2"]): p for p in result["pairs"]}
    assert set(pairs) == {("20610", "99213"), ("20610", "20604")}
    assert pairs[("20610", "20604")]["modifier_indicator"] == "0"
    assert "no modifier" in pairs[("20610", "20604")]["message"]
    em = pairs[("20610", "99213")]
    assert em["modifier_indicator"] == "1" and em["bypassed_by_modifier"] is True
    assert em["rationale"] == "Standards of medical / surgical practice"
    by_code = {c["code"]: c for c in result["codes"]}
    assert by_code["20610"]["mue"]["value"] == 2 and by_code["E11.22"]["mue"] is None
    assert result["notes"] == []


def test_deletion_date_is_exclusive(session):
    assert check(session, ["36415", "36416"], date(2024, 12, 31)).pairs
    assert check(session, ["36415", "36416"], date(2025, 1, 1)).pairs == []


def test_hospital_setting_uses_its_own_table(session):
    result = check(session, ["93000", "93005"], ON, setting="hospital")
    assert [p["modifier_indicator"] for p in result.pairs] == ["1"]
    assert check(session, ["93000", "93005"], ON).pairs[0]["modifier_indicator"] == "0"


def test_bad_requests_are_refused(session):
    with pytest.raises(CheckError, match="setting"):
        check(session, ["20610"], ON, setting="asc")
    with pytest.raises(CheckError):
        check(session, [], ON)


def test_missing_tables_are_said_not_hidden(fresh_db):
    with fresh_db.read() as s:
        result = check(s, ["20610", "99213"], ON)
    assert any("NCCI practitioner PTP edits are not imported" in n for n in result.notes)
