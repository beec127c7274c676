"""What LOOKUP, SEARCH and CHECK answer, straight from the knowledge base
(the runner on the test database; no mail transport)."""

from __future__ import annotations

import re

import pytest

from tests.commands.support import ask_by_mail


@pytest.fixture
def answer(ctx, codes_db, db):
    return ask_by_mail(ctx, db)


def test_validity_is_for_the_date_of_service_asked_about(answer):
    _, then, _ = answer("LOOKUP J1030 on 2024-01-15")
    _, now, _ = answer("LOOKUP J1030")
    assert "Valid on 2024-01-15" in then
    # no date given: the reply says which date it assumed instead of "the date of service"
    assert "NOT VALID on 2" in now and "(today; no date of service given)" in now
    assert "J1030 was terminated: valid until 2024-03-31" in now


def test_a_header_code_says_so_and_lists_the_codes_under_it(answer):
    _, text, html = answer("LOOKUP E11")
    assert "header, not billable" in text and "report one of its more specific codes" in text
    assert "Codes under it:" in text and "E11.9" in text
    assert "Codes under it" in html


def test_icd_notes_include_what_the_category_says(answer):
    _, text, _ = answer("LOOKUP S52.521A")
    assert "7th character" in text and "A = initial encounter for closed fracture" in text
    assert "Excludes2 (not included here; both may be coded) (from S52" in text


def test_a_cpt_code_shows_public_facts_and_never_a_descriptor(answer):
    _, text, html = answer("LOOKUP 99213-25")
    assert "AMA" in text and "Work RVU: 1.30" in text and "Modifier 25" in text
    assert "Office or other outpatient visit" not in text  # the AMA descriptor is never shipped


def test_a_code_set_version_is_cited_for_every_code_shown(answer):
    _, text, _ = answer("LOOKUP E11.22 J1100 99213 GA")
    cards = [c for c in text.split("-" * 72) if re.match(r"\s*\S+\s+\[", c)]
    assert len(cards) == 4 and all("code set:" in c for c in cards)


def test_search_can_be_narrowed_to_one_code_set(answer):
    _, text, _ = answer("SEARCH hcpcs methylprednisolone injection")
    systems = re.findall(r"^\d+\s+\S+\s+\[([^\]]+)\]", text, re.M)
    assert systems and set(systems) == {"HCPCS Level II"}
    assert "1  J1010" in text  # methylprednisolone acetate, the code in force (J1030 ended 2024-03-31)
    assert 'matches for "methylprednisolone injection" in HCPCS' in text


def test_a_search_that_finds_nothing_says_so_with_examples(answer):
    kind, text, _ = answer("SEARCH qwxzvbnm")
    assert kind == "search" and "We found no codes matching" in text and "SEARCH renal cryoablation" in text


def test_words_around_the_codes_are_named_as_left_out(answer):
    _, text, _ = answer("LOOKUP please E11.22 thanks")
    assert "Not codes, left out: please, thanks" in text


def test_a_date_past_the_newest_release_is_flagged_on_the_card(answer):
    _, text, html = answer("LOOKUP J1100 on 2027-02-01")  # HCPCS is shipped to April 2026
    assert "newest imported release" in " ".join(text.split()) and "newest imported release" in html
