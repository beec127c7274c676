"""Extraction: what a question states, including loose and bad input (no database)."""

from datetime import date

import pytest

from mailbot.answers.facts import extract
from mailbot.answers.intents import detect

SENT = date(2026, 11, 16)


@pytest.mark.parametrize("text, codes", [
    ("e11 .22 billable?", ["E11.22"]),
    ("n18 6 with E11.22, what order?", ["N18.6", "E11.22"]),
    ("J-1030 replaced by?", ["J1030"]),
    ("99213-25 and 20610 same day", ["99213-25", "20610"]),
    ("M54.5x - which one?", ["M54.5"]),
    ("no codes here, just low back pain", []),
])
def test_codes_written_loosely_are_read(text, codes):
    assert extract(text, message_date=SENT).codes == codes


def test_a_placeholder_code_asks_for_its_children():
    facts = extract("M54.5x - which one for low back pain?", message_date=SENT)
    assert facts.placeholder_codes == ["M54.5"]
    assert "children" in {f["intent"] for f in detect(facts)}


def test_a_stated_date_of_service_wins_over_the_message_date():
    facts = extract("Is E11.22 billable for DOS 11/20/2026?", message_date=SENT)
    assert facts.date_of_service == date(2026, 11, 20) and facts.date_source == "stated"


def test_without_a_date_the_message_date_is_assumed():
    facts = extract("Is E11.22 billable?", message_date=SENT)
    assert facts.date_of_service == SENT and facts.date_source == "message date"


def test_contradictory_dates_are_noticed():
    facts = extract("DOS 11/02/2026 ... no wait, DOS 10/28/2026", message_date=SENT)
    assert facts.contradictory_dates and facts.date_of_service == date(2026, 11, 2)


def test_a_birth_date_is_not_the_date_of_service():
    facts = extract("DOB 01/02/1950, seen 03/04/2026", message_date=SENT)
    assert facts.date_of_service == date(2026, 3, 4)


def test_no_date_at_all_and_no_message_date():
    facts = extract("Is E11.22 billable?")
    assert facts.date_of_service is None and facts.date_source == ""


def test_the_subject_is_read_without_the_literal_word():
    facts = extract("Subject: depo-medrol 80 mg units\n\nJ1030 denied", message_date=SENT)
    assert facts.subject == "depo-medrol 80 mg units" and not facts.text.lower().startswith("subject")


def test_setting_payer_side_encounter_patient_dose_route():
    facts = extract("Medicare hospital outpatient, 67 yo female, Kenalog 40 mg into the left knee, "
                    "subsequent encounter", message_date=SENT)
    assert (facts.setting, facts.payer, facts.laterality, facts.encounter) == (
        "hospital", "Medicare", "left", "subsequent")
    assert (facts.age, facts.sex, facts.route) == (67, "female", "intra-articular")
    assert facts.given_dose.amount == 40 and facts.given_dose.unit == "mg"


def test_right_as_a_word_is_not_a_side():
    assert extract("99213-25 and 20610 - is that right?", message_date=SENT).laterality == ""


def test_given_and_wasted_amounts_are_told_apart():
    facts = extract("Avastin 400 mg given, 20 mg wasted", message_date=SENT)
    assert (facts.given_dose.amount, facts.wasted_dose.amount) == (400, 20)
    none = extract("B12 1000 mcg, nothing wasted", message_date=SENT)
    assert none.no_waste and none.wasted_dose is None


def test_billed_units_are_not_a_dose():
    facts = extract("J1010 x 100 units", message_date=SENT)
    assert facts.billed_units == 100 and facts.given_dose is None


def test_intents_fire_in_table_order_with_their_triggers():
    fired = detect(extract("Pt had 99213 and 20610 same day, which modifier?", message_date=SENT))
    names = [f["intent"] for f in fired]
    assert names == ["valid", "modifier", "bundle"]
    assert all(f["trigger"].startswith(("words:", "facts:")) for f in fired)


def test_empty_and_hostile_input_does_not_crash():
    for text in ("", "   ", "\x00\x01", "x" * 20000, "DOS 13/45/2026"):
        facts = extract(text, message_date=SENT)
        assert facts.codes == [] and facts.date_of_service == SENT
