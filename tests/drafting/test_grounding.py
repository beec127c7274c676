"""Retrieval, the offline drafter and verification against the loaded code sets."""

from datetime import date

import pytest

from mailbot.drafting import offline
from mailbot.drafting.context import build_context, modifiers_in, search_words
from mailbot.drafting.verify import codes_still_in, verify_answer

DOS = date(2026, 3, 15)


@pytest.fixture
def session(codes_db, db):
    with db.read() as s:
        yield s


def test_the_context_holds_cards_edits_mues_and_modifier_guidance(session):
    ctx = build_context(session, "Can 20610 and 99213-25 be billed together? [NAME] DOB [DOB]", on=DOS)
    assert ctx.codes == ["20610", "99213-25"]
    cards = {c["code"]: c for c in ctx.cards}
    assert cards["20610"]["found"] and cards["20610"]["system"] == "cpt" and cards["20610"]["title"] is None
    pairs = [(p["column1"], p["column2"]) for p in ctx.check["pairs"]]
    assert ("20610", "99213") in pairs
    assert "25" in ctx.modifiers and ctx.modifiers["25"]
    assert "[NAME]" not in ctx.search_query and "DOB" not in ctx.search_query.split()
    prompt = ctx.to_prompt_text()
    assert "20610" in prompt and "children" not in prompt[:0]


def test_a_described_condition_is_searched(session):
    ctx = build_context(session, "What is the ICD-10 code for type 2 diabetes with chronic kidney disease?", on=DOS)
    assert ctx.cards == []
    assert any(hit["code"].startswith("E11.2") for hit in ctx.search_hits)


def test_the_offline_draft_states_facts_and_asks_for_what_is_missing(session):
    ctx = build_context(session, "Is 20610 with 99213 ok? Also J1010 x 100 units", on=None)
    draft = offline.draft(ctx)
    assert draft["answer"].startswith(offline.LABEL)
    assert "20610" in draft["answer"] and "NCCI edit" in draft["answer"] and "MUE for J1010: 80" in draft["answer"]
    assert any("date of service" in q for q in draft["questions"])
    assert {c["code"] for c in draft["cited_codes"]} == {"20610", "99213", "J1010"}


def test_verification_flags_invented_header_and_uncited_codes(session):
    cited = [{"code": "E11.22", "role": "recommended"}, {"code": "E11.99", "role": "recommended"},
             {"code": "E11", "role": "mentioned"}]
    result = verify_answer(session, cited, "Use E11.22 with N18.31 (not E11.99).", DOS)
    rows = {r["code"]: r for r in result.codes}
    assert rows["E11.22"]["ok"] and "FY2026" in rows["E11.22"]["version"]
    assert rows["N18.31"]["role"] == "uncited" and rows["N18.31"]["ok"]
    assert not rows["E11.99"]["ok"] and rows["E11.99"]["status"] in ("unknown", "invalid")
    assert rows["E11"]["status"] == "not_billable" and not rows["E11"]["ok"]
    assert [r["code"] for r in result.blocking] == ["E11.99"]


def test_ncci_conflicts_among_cited_codes_are_surfaced(session):
    result = verify_answer(session, [{"code": "20610"}, {"code": "20604"}], "20610 and 20604", DOS)
    assert [(p["column1"], p["column2"], p["modifier_indicator"]) for p in result.ncci] == [("20610", "20604", "0")]


def test_a_code_deleted_from_the_text_is_no_longer_cited():
    cited = [{"code": "E11.22"}, {"code": "E11.99"}]
    assert codes_still_in("Use E11.22 only.", cited) == [{"code": "E11.22"}]


@pytest.mark.parametrize("text, mods", [
    ("99213-25 and 20610-RT", ["25", "RT"]),
    ("should we add modifier 59 or XU?", ["59", "XU"]),
    ("no modifiers here", []),
])
def test_modifiers_are_found_attached_or_named(text, mods):
    from mailbot.codes.extract import find_codes

    assert modifiers_in(text, find_codes(text)) == mods


def test_search_words_drop_placeholders_codes_and_filler():
    assert search_words("Hi, [NAME] has 99213 and type 2 diabetes with CKD, thanks!") == "type diabetes CKD"


def test_codes_are_verified_for_the_date_of_service_across_code_set_versions(session):
    before = {r["code"]: r for r in verify_answer(session, [{"code": "S23.420A"}], "", date(2026, 9, 30)).codes}
    after = {r["code"]: r for r in verify_answer(session, [{"code": "S23.420A"}], "", date(2026, 10, 1)).codes}
    assert before["S23.420A"]["ok"] and "FY2026" in before["S23.420A"]["version"]
    assert not after["S23.420A"]["ok"] and after["S23.420A"]["status"] in ("terminated", "unknown", "invalid")
