"""Typed code forms become canonical codes; free text yields only real-looking codes."""

import pytest

from mailbot.codes.extract import find_codes
from mailbot.codes.normalize import candidates, normalize


@pytest.mark.parametrize("typed, expected", [
    ("e11.22", ("icd10cm", "E11.22")),
    (" 99213 ", ("cpt", "99213")),
    ("J-1030", ("hcpcs", "J1030")),
    ("j1030", ("hcpcs", "J1030")),
    ("-25", ("modifier", "25")),
    ("LT", ("modifier", "LT")),
    ("99213-25", ("cpt", "99213-25")),
    ("S52.521A", ("icd10cm", "S52.521A")),
    ("t36.0x1a", ("icd10cm", "T36.0X1A")),
    ("0001F", ("cpt", "0001F")),
    ("E11.", ("icd10cm", "E11")),
    ("U07.1", ("icd10cm", "U07.1")),
])
def test_normalize_accepts_the_forms_people_type(typed, expected):
    assert normalize(typed) == expected


def test_letter_and_four_digits_reads_as_hcpcs_then_icd():
    assert candidates("E1122") == [("hcpcs", "E1122"), ("icd10cm", "E11.22")]
    assert candidates("I1000")[0] == ("icd10cm", "I10.00")  # I is not a HCPCS letter


@pytest.mark.parametrize("text", ["", "hello", "123", "E11.22222", "$$"])
def test_normalize_rejects_what_is_not_code_shaped(text):
    assert normalize(text) is None


def test_find_codes_keeps_order_dedupes_and_attaches_modifiers():
    text = "Can 20610 and 99213-25 be billed together? Dx e11.22 and I10; again 20610, also J-1030."
    assert find_codes(text) == ["20610", "99213-25", "E11.22", "I10", "J1030"]


def test_find_codes_ignores_zip_phone_money_years_and_lab_words():
    text = ("Mail us at 12 Main St, Boston, MA 02139 or zip 10001. Call 555-123-4567 or (617) 555-1234. "
            "We paid $12345 in 2024, 12345.67 in fees. Vitamin B12 low, HbA1c 7.2, A1C done.")
    assert find_codes(text) == []


def test_find_codes_reads_seventh_character_and_letter_categories():
    assert find_codes("Fracture S52.521A, poisoning T36.0X1A, Merkel C4A.0") == ["S52.521A", "T36.0X1A", "C4A.0"]


def test_find_codes_reads_lists_typed_without_spaces():
    # regression: "99213,99214" lost the first code (the comma was taken for a thousands separator)
    assert find_codes("codes: 99213,99214, 20610.") == ["99213", "99214", "20610"]
