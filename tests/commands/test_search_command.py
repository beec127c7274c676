"""SEARCH by email: date of service, trimming, the query in the body, bad input, and
the "did you mean" of a mistyped code (issues 12, 14 and 15)."""

from __future__ import annotations

import pytest

from tests.commands.support import ask_by_mail


@pytest.fixture
def answer(ctx, codes_db, db):
    return ask_by_mail(ctx, db)


def test_search_on_a_date_of_service_finds_the_codes_valid_then(answer):
    _, then, html = answer("SEARCH hcpcs methylprednisolone acetate 40 mg on 2023-06-01")
    _, now, _ = answer("SEARCH hcpcs methylprednisolone acetate 40 mg")
    assert "1  J1030" in then and "valid on 2023-06-01" in then and "valid on 2023-06-01" in html
    assert "LOOKUP J1030" in then and "on 2023-06-01" in then
    assert "J1030" not in now and "J1010" in now


def test_the_query_in_the_body_under_a_search_subject_is_searched_without_the_verb(answer):
    _, text, _ = answer("SEARCH", "type 2 diabetes with chronic kidney disease\n\nthanks")
    assert 'matches for "type 2 diabetes with chronic kidney disease"' in text and "1  E11.22" in text
    _, again, _ = answer("SEARCH", "SEARCH type 2 diabetes with chronic kidney disease")
    assert 'matches for "type 2 diabetes with chronic kidney disease"' in again


def test_shorthand_side_and_encounter_reach_the_7th_character(answer):
    _, text, _ = answer("SEARCH torus fx lower end radius lt subs")
    assert "1  S52.522D" in text


@pytest.mark.parametrize("subject, problem", [
    ("SEARCH the of and", "nothing to search for"),
    ("SEARCH on 2021-06-01", "SEARCH needs some words"),
])
def test_bad_searches_get_a_clear_answer(answer, subject, problem):
    kind, text, _ = answer(subject)
    assert kind == "command-error" and problem in text and "SEARCH renal cryoablation" in text


def test_a_control_character_search_is_answered_not_crashed(answer):
    kind, text, _ = answer("SEARCH", "\x07\x1b\x7f")  # NUL: tests/codes/test_search.py (PostgreSQL text cannot hold it)
    assert kind == "command-error" and ("control" in text or "needs some words" in text)


def test_a_code_typed_with_letter_o_suggests_the_code_not_a_category(answer):
    _, text, _ = answer("LOOKUP J103O")
    assert "Did you mean:" in text and "J1030" in text
    assert "J10.0" not in text and "J10.1" not in text  # not the influenza codes


def test_a_code_set_we_do_not_hold_gets_a_clear_answer(answer):
    kind, text, _ = answer("SEARCH snomed type 2 diabetes")
    assert kind == "command-error" and "cannot search SNOMED CT" in text and "ICD-10-CM" in text


def test_a_500_word_search_is_trimmed_and_answered_not_crashed(answer):
    body = " ".join(("patient seen today for type 2 diabetes with chronic kidney disease " * 50).split()[:500])
    kind, text, _ = answer("SEARCH", body)
    assert kind == "search" and "E11.22" in text
