"""CHECK by mail over the shipped hospital outpatient NCCI table: the table is
named with its setting and quarter, the modifier indicator is explained, add-on
codes without a primary are flagged, and a practitioner question never reads as
checked by the hospital table.  LOOKUP cards show CC/MCC and HCC."""

from __future__ import annotations

import pytest

from tests.commands.support import ask_by_mail


@pytest.fixture
def answer(ctx, codes_db, db):
    ask = ask_by_mail(ctx, db)
    return lambda subject: ask(subject)[1:]


def test_check_29881_29877_hospital_reports_indicator_0_and_names_the_table(answer):
    text, html = answer("CHECK 29881 29877 hospital on 2026-06-01")
    assert "NCCI PTP, hospital outpatient, April 2026" in text
    assert "29881 (column 1) with 29877 (column 2)" in text and "Modifier indicator 0" in text
    assert "no modifier allowed" in html


def test_practitioner_check_names_the_table_that_decides(answer):
    text, _ = answer("CHECK 20610 99211 99213 on 2026-06-01")  # the synthetic practitioner table is loaded
    assert "NCCI PTP, practitioner" in text
    assert "hospital outpatient" not in text.split("NCCI PAIR EDITS")[0]


def test_addon_without_primary_is_flagged(answer):
    text, html = answer("CHECK 11045 97597 hospital on 2026-06-01")
    assert "[PRIMARY MISSING] 11045 is an add-on code reported without any of its primary codes (11042)" in \
        " ".join(text.split())
    assert "primary missing" in html


def test_lookup_card_shows_cc_mcc_and_hcc(answer):
    text, html = answer("LOOKUP J96.01 E11.22 A2040 on 2026-06-01")
    flat = " ".join(text.split())
    assert "CC/MCC: MCC" in flat and "MS-DRG v43 (FY2026)" in flat
    assert "HCC: HCC 37 Diabetes with Chronic Complications -- CMS-HCC V28 (2026)" in flat
    assert "Microlyte painguard pr sq cm" in flat and "Descriptor shown: short descriptor" in flat
