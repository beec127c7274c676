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


def test_the_offline_draft_leads_with_the_answer_and_carries_no_label(session):
    ctx = build_context(session, "Is 20610 with 99213 ok? Also J1010 x 100 units", on=None, message_date=DOS)
    draft = offline.draft(ctx)
    assert draft["answer"].startswith("Report ") and offline.LABEL not in draft["answer"]
    assert not draft["answer"].startswith(("Hello", "Hi", "Dear")) and "Certified coder" not in draft["answer"]
    assert "NCCI edit" in draft["answer"] and "MUE for J1010: 80" in draft["answer"]
    assert "J1010 x 100 units" in draft["answer"]
    # the message date stands in for the date of service, said as an assumption, not asked
    assert "assumed" in draft["answer"] and not any("What is the date" in q for q in draft["questions"])
    assert "exceeds the MUE of 80" in draft["questions"][0]
    assert {"20610", "99213", "J1010"} <= {c["code"] for c in draft["cited_codes"]}
    assert draft["offline"] and 0.05 <= draft["confidence"] <= 0.95 and draft["confidence"] != 0.3


def test_the_offline_draft_keeps_search_candidates_when_a_code_is_named(session):
    ctx = build_context(session, "Is E11.9 right? What is the code for type 2 diabetes with chronic kidney "
                        "disease?", on=DOS)
    draft = offline.draft(ctx)
    roles = {c["code"]: c["role"] for c in draft["cited_codes"]}
    assert roles.get("E11.9") == "recommended" and any(code.startswith("E11.2") for code in roles)


def test_a_diagnosis_question_gets_no_hcpcs_candidates(session):
    ctx = build_context(session, "What is the ICD-10 code for screening colonoscopy, average risk?", on=DOS)
    assert ctx.search_hits and all(hit["system"] == "icd10cm" for hit in ctx.search_hits)
    assert all(c["code"][0] != "G" for c in offline.draft(ctx)["cited_codes"])


def test_no_header_or_invalid_code_unless_marked_not_to_report(session):
    from mailbot.codes.extract import find_codes

    draft = offline.draft(build_context(session, "Is M54.5 billable? And J1030 40 mg?", on=DOS))
    assert "M54.50" in draft["answer"].splitlines()[0] and "J1010 x 40 units" in draft["answer"].splitlines()[0]
    for line in draft["answer"].splitlines():
        if {"M54.5", "J1030"} & set(find_codes(line)):
            assert any(w in line.lower() for w in ("not report", "ended", "terminated", "deleted", "instead", "header", "not valid",
                                                   "not billable")), line


def _problems(session, body, cited=(), on=DOS, setting="practitioner"):
    from mailbot.drafting.verify import approval_problems

    verification = verify_answer(session, list(cited), body, on, setting=setting)
    return [(p.kind, p.code, p.reason) for p in approval_problems(verification, body, on)]


def test_the_approval_guard_on_recommended_codes(session):
    assert _problems(session, "Report E11.22 and N18.31.") == []
    [(kind, code, _)] = _problems(session, "Report M54.5.", [{"code": "M54.5", "role": "recommended"}])
    assert (kind, code) == ("header", "M54.5")
    assert _problems(session, "Report J1010 x 40 units; do not report J1030 (ended 2024-03-31).") == []
    assert _problems(session, "Report J1030.")[0][:2] == ("terminated", "J1030")
    assert [k for k, _, _ in _problems(session, offline.LABEL + "\nReport E11.22.")] == ["offline_label"]
    assert [k for k, _, _ in _problems(session, offline.LLM_DOWN_LABEL.format(reason="timeout")
                                       + "\nReport E11.22.")] == ["offline_label"]


def test_the_approval_guard_on_ncci_pairs_among_recommended_codes(session):
    # indicator 1 (practitioner table of the tests): refused until the answer addresses it
    assert [k for k, _, _ in _problems(session, "Report 20610 and 99213.")] == ["ncci"]
    assert _problems(session, "Report 99213 with 20610-59 per the NCCI edit.") == []
    # indicator 0: talking about modifiers does not help while both are still recommended
    zero = _problems(session, "Report 20610 and 20604 with modifier 59.")
    assert zero and "indicator 0" in zero[0][2]
    assert _problems(session, "Report 20604; do not report 20610 (bundled, indicator 0).") == []


def test_the_approval_guard_uses_the_table_of_the_claims_setting(session):
    from mailbot.drafting.verify import claim_setting

    assert claim_setting("29881 and 29880 same knee, hospital outpatient?") == "hospital"
    assert claim_setting("29881 and 29880 in the office?") == "practitioner"
    # each claim is judged by its own table (the shipped hospital one, the tests' practitioner one)
    hospital = _problems(session, "Report 29881 and 29877.", setting="hospital")
    assert [k for k, _, _ in hospital] == ["ncci"] and "indicator 0" in hospital[0][2]
    assert "hospital" in hospital[0][2].lower()
    # a hospital-only pair is a labelled fact for a practitioner claim, not a conflict of its answer
    assert _problems(session, "Report 29881 and 29877.") == []
    practitioner = _problems(session, "Report 29880 and 29881.")
    assert [k for k, _, _ in practitioner] == ["ncci"] and "hospital" not in practitioner[0][2].lower()
    assert _problems(session, "Report 20610 and 99213.", setting="hospital") == []
