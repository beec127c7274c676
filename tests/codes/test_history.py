"""Dated verdicts and successors on the shipped sets (ICD-10-CM FY2016-FY2027,
HCPCS January 2025), and the in-memory knowledge behind the cards."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from sqlalchemy import event, or_, select

from mailbot.codes.history import status_on
from mailbot.codes.knowledge import get_knowledge
from mailbot.codes.lookup import lookup
from mailbot.codes.successors import convert, successors
from mailbot.models.codes import CodeEntry


@pytest.fixture
def session(codes_db, db):
    with db.read() as s:
        yield s


def _valid_rows(session, code, on):
    """The contract other code relies on: one indexed query answers 'valid on d'."""
    return session.execute(select(CodeEntry.billable, CodeEntry.version_id).where(
        CodeEntry.system == "icd10cm", CodeEntry.code == code, CodeEntry.valid_from <= on,
        or_(CodeEntry.valid_to.is_(None), CodeEntry.valid_to >= on))).all()


def test_valid_on_a_date_is_one_query_on_code_entry(session):
    assert [b for b, _ in _valid_rows(session, "M54.5", date(2021, 6, 1))] == [True]
    assert [b for b, _ in _valid_rows(session, "M54.5", date(2022, 6, 1))] == [False]
    assert _valid_rows(session, "M54.50", date(2021, 6, 1)) == []
    assert [b for b, _ in _valid_rows(session, "E11.22", date(2025, 6, 1))] == [True]


@pytest.mark.parametrize("code, on, status, version", [
    ("M54.5", date(2021, 6, 1), "ok", "ICD-10-CM FY2021"),
    ("M54.5", date(2022, 6, 1), "not_billable", "ICD-10-CM FY2022"),
    ("E11.22", date(2025, 6, 1), "ok", "ICD-10-CM FY2025"),
    ("G35", date(2025, 6, 1), "ok", "ICD-10-CM FY2025"),
    ("G35", date(2025, 10, 1), "not_billable", "ICD-10-CM FY2026 (April 1, 2026 update)"),
    ("H40.11X0", date(2016, 6, 1), "ok", "ICD-10-CM FY2016"),
    ("H40.11X0", date(2016, 10, 1), "terminated", "ICD-10-CM FY2017"),
    ("M54.50", date(2021, 9, 30), "not_yet_valid", "ICD-10-CM FY2021"),
])
def test_verdicts_name_the_fiscal_year_in_force(session, code, on, status, version):
    verdict = status_on(session, "icd10cm", code, on)
    assert (verdict.status, verdict.version) == (status, version)
    assert version.removeprefix("ICD-10-CM ") in verdict.message


def test_mid_year_updates_start_on_their_real_dates(session):
    assert status_on(session, "icd10cm", "U07.1", date(2020, 4, 1)).status == "ok"
    assert status_on(session, "icd10cm", "U07.1", date(2020, 3, 31)).status == "not_yet_valid"
    assert status_on(session, "icd10cm", "Z20.822", date(2021, 1, 1)).status == "ok"
    assert status_on(session, "icd10cm", "M35.8", date(2021, 1, 1)).status == "not_billable"


def test_titles_are_those_of_the_year(session):
    assert status_on(session, "icd10cm", "Z86.010", date(2024, 6, 1)).title == "Personal history of colonic polyps"
    assert status_on(session, "icd10cm", "Z86.010", date(2025, 6, 1)).title == "Personal history of colon polyps"


def test_before_icd10_the_verdict_says_icd9_era(session):
    verdict = status_on(session, "icd10cm", "M54.5", date(2015, 9, 30))
    assert verdict.status == "icd9_era" and "ICD-9-CM" in verdict.message and "not covered" in verdict.message


def test_a_header_lists_the_children_to_report(session):
    found = successors(session, "icd10cm", "M54.5", date(2022, 6, 1))
    assert [s["code"] for s in found] == ["M54.50", "M54.51", "M54.59"]
    assert found[0]["why"] == "M54.5 became a header in FY2022 (2021-10-01); M54.50 was added then to report instead"
    assert successors(session, "icd10cm", "M54.5", date(2021, 6, 1)) == []


@pytest.mark.parametrize("code, on, expected", [
    ("G35", date(2026, 1, 1), {"G35.A", "G35.B0", "G35.B1", "G35.B2", "G35.C0", "G35.C1", "G35.C2", "G35.D"}),
    ("Z86.010", date(2025, 1, 1), {"Z86.0100", "Z86.0101", "Z86.0102", "Z86.0109"}),
    ("E78.01", date(2026, 1, 1), {"E78.010", "E78.011", "E78.019"}),
])
def test_codes_that_became_headers_name_their_new_children(session, code, on, expected):
    assert {s["code"] for s in successors(session, "icd10cm", code, on)} == expected


def test_a_deleted_code_names_the_parent_that_became_billable(session):
    found = successors(session, "icd10cm", "I60.20", date(2017, 1, 1))
    assert [s["code"] for s in found] == ["I60.2"] and "its parent, billable from then" in found[0]["why"]


def test_a_terminated_hcpcs_drug_names_the_same_drug_with_the_unit_conversion(session):
    [j1010] = successors(session, "hcpcs", "J1030", date(2026, 12, 1))
    assert j1010["code"] == "J1010" and j1010["units"] == "per 1 mg: 40 mg = 40 units"
    assert j1010["why"].startswith("J1030 terminated 2024-03-31; J1010 added 2024-04-01 for the same drug")
    assert successors(session, "hcpcs", "J1030", date(2024, 3, 1)) == []  # still valid then


def test_the_hcpcs_cross_reference_field_is_used_where_filled(session):
    k = get_knowledge(session)
    with_xref = [rows[-1] for code, rows in k.rows["hcpcs"].items()
                 if rows[-1].valid_to is not None and rows[-1].notes.get("xref")
                 and k.rows_of("hcpcs", rows[-1].notes["xref"])]
    assert with_xref  # the January 2025 file fills it for some terminated codes
    row = with_xref[0]
    found = successors(session, "hcpcs", row.code, date(2026, 12, 1))
    assert found[0]["code"] == row.notes["xref"] and "cross-reference field" in found[0]["why"]


@pytest.mark.parametrize("old, new, text", [
    (("x", Fraction(40), "mg", "40 mg"), ("x", Fraction(1), "mg", "1 mg"), "per 1 mg: 40 mg = 40 units"),
    (("x", Fraction(1), "mg", "1 mg"), ("x", Fraction(100), "mcg", "100 mcg"), "per 100 mcg: 1 mg = 10 units"),
    (("x", Fraction(5), "mg", "5 mg"), ("x", Fraction(10), "mg", "10 mg"), "per 10 mg: 5 mg = 0.5 units"),
    (("x", Fraction(5), "mg", "5 mg"), ("x", Fraction(1), "ml", "1 ml"), ""),
])
def test_unit_conversion_comes_from_both_doses(old, new, text):
    assert convert(old, new) == text


def test_cards_run_no_code_query_per_code(session):
    codes = ["M54.5", "E11.22", "S52.521A", "G35", "Z86.010", "E78.01"]
    get_knowledge(session)  # the full load (a cold process gets category slices meanwhile)
    statements: list[str] = []
    engine = session.get_bind()

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        cards = lookup(session, codes, date(2022, 6, 1))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert all(c.found for c in cards)
    assert not [s for s in statements if "code_entry" in s]


def test_a_card_without_a_date_says_it_assumed_today(session):
    [card] = lookup(session, ["J1030"])
    assert card.date_assumed and "(today; no date of service given)" in card.message
    assert card.successors[0]["code"] == "J1010"


def test_a_cold_process_answers_from_a_slice_while_the_knowledge_loads(session):
    from mailbot.codes import knowledge

    knowledge.invalidate()
    [card] = lookup(session, ["M54.5"], date(2022, 6, 1))  # does not wait for the full load
    assert card.status == "not_billable" and [s["code"] for s in card.successors] == ["M54.50", "M54.51", "M54.59"]
    assert card.version == "ICD-10-CM FY2022"
    get_knowledge(session)  # (waits for a full load of its own)
