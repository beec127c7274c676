"""LOOKUP / CHECK / SEARCH for a past date of service: the verdict of the
code set of that year, and what to report instead (issue 12, points 1-2)."""

from __future__ import annotations

import re

import pytest

from tests.commands.support import ask_by_mail


@pytest.fixture
def answer(ctx, codes_db, db):
    ask = ask_by_mail(ctx, db)
    return lambda subject, text="": ask(subject, text)[1:]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_m545_was_billable_in_fy2021(answer):
    text, _ = answer("LOOKUP M54.5 on 2021-06-01")
    flat = _flat(text)
    assert "M54.5 [ICD-10-CM] billable" in flat and "Low back pain" in flat
    assert "Valid on 2021-06-01 -- code set: ICD-10-CM FY2021" in flat


def test_m545_is_a_header_from_fy2022_naming_what_to_report(answer):
    text, html = answer("LOOKUP M54.5 on 2022-06-01")
    flat = _flat(text)
    assert "header, not billable" in flat and "ICD-10-CM FY2022" in flat
    assert "header since FY2022 (2021-10-01)" in flat
    report = flat.split("Report instead:")[1]
    assert [c for c in ("M54.50", "M54.51", "M54.59") if c in report] == ["M54.50", "M54.51", "M54.59"]
    assert "Report instead:" in html and "M54.51" in html


def test_e1122_was_valid_in_fy2025(answer):
    text, _ = answer("LOOKUP E11.22 on 2025-06-01")
    assert "Valid on 2025-06-01 -- code set: ICD-10-CM FY2025" in _flat(text)


def test_j1030_today_names_j1010_and_the_unit_conversion(answer):
    text, _ = answer("LOOKUP J1030")
    flat = _flat(text)
    assert "J1010" in flat.split("Report instead:")[1]
    assert "per 1 mg: 40 mg = 40 units" in flat


@pytest.mark.parametrize("code, on, children", [
    ("G35", "2026-01-15", ["G35.A", "G35.B0", "G35.C0", "G35.D"]),
    ("Z86.010", "2025-01-15", ["Z86.0100", "Z86.0101", "Z86.0102", "Z86.0109"]),
    ("E78.01", "2026-01-15", ["E78.010", "E78.011", "E78.019"]),
])
def test_codes_that_became_headers_name_their_children(answer, code, on, children):
    text, _ = answer(f"LOOKUP {code} on {on}")
    report = _flat(text).split("Report instead:")[1]
    assert all(c in report for c in children)


def test_a_date_before_icd10_is_called_icd9_era(answer):
    text, _ = answer("LOOKUP M54.5 on 2014-06-01")
    flat = _flat(text)
    assert "ICD-9-CM" in flat and "not covered" in flat and "NOT VALID" not in flat


def test_check_uses_the_date_and_names_the_successors(answer):
    text, _ = answer("CHECK M54.5 J1030 on 2024-06-01")
    flat = _flat(text)
    assert "Checked 2 codes for 2024-06-01" in flat
    assert "ICD-10-CM FY2024" in flat and "instead: M54.50" in flat and "instead: J1010" in flat
    assert "40 mg = 40 units" in flat


def test_check_without_a_date_says_which_date_it_assumed(answer):
    text, _ = answer("CHECK J1030 J1010")
    assert "(today; no date of service given)" in _flat(text)


def test_search_passes_its_on_date_to_the_verdicts(answer):
    text, _ = answer("SEARCH low back pain on 2021-06-01")
    flat = _flat(text)
    assert re.search(r"M54\.5 \[ICD-10-CM\]", flat)
    # the date is a qualifier, not searched as words: the quoted words stop before it
    assert flat.split("best matches for")[1].strip().startswith('"low back pain"')
