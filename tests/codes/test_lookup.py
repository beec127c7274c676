"""Code cards from the shipped sets: the JSON contract, dates, versions, public facts."""

from __future__ import annotations

from datetime import date

import pytest

from mailbot.codes import versions
from mailbot.codes.lookup import lookup
from mailbot.codes.validate import verify

FY26 = date(2026, 5, 1)
FY27 = date(2026, 11, 2)
CONTRACT = {"input", "code", "system", "found", "title", "billable", "valid_on_date", "version", "notes",
            "rvu", "ncci", "mue", "parent", "children", "suggestions", "licence_note"}


@pytest.fixture
def session(codes_db, db):
    with db.read() as s:
        yield s


def test_typed_forms_resolve_to_one_canonical_code(session):
    cards = lookup(session, ["e11.22", "E1122", " E11.22 "], FY27)
    assert {c.code for c in cards} == {"E11.22"}
    card = cards[0].to_dict()
    assert CONTRACT <= set(card)
    assert card["system"] == "icd10cm" and card["found"] and card["billable"] and card["valid_on_date"]
    assert card["title"] == "Type 2 diabetes mellitus with diabetic chronic kidney disease"
    assert card["version"] == "ICD-10-CM FY2027"
    assert card["parent"]["code"] == "E11.2"
    # category notes apply to the code and are shown with where they come from
    e11 = next(n for n in card["inherited_notes"] if n["code"] == "E11")
    assert any("insulin (Z79.4)" in t for t in e11["notes"]["use_additional"])


def test_hcpcs_card_with_dates_rvus_and_mue(session):
    j1030, j1010 = lookup(session, ["J-1030", "j1010"], FY27)
    assert (j1030.system, j1030.code, j1030.status) == ("hcpcs", "J1030", "terminated")
    assert "2024-03-31" in j1030.message
    assert j1010.status == "ok" and j1010.title == "Injection, methylprednisolone acetate, 1 mg"
    assert j1010.version == "HCPCS Level II 2026 Apr (I/OCE 27.1.0)"  # the set in force on the date
    assert j1010.mue and j1010.mue[0]["value"] == 80
    # HCPCS is current to April 2026 (I/OCE quarters); 2027 dates lie past it: say so
    assert j1010.version_warning is None
    assert "newest imported release" in lookup(session, ["J1010"], date(2027, 2, 1))[0].version_warning
    assert lookup(session, ["J1010"], date(2025, 6, 2))[0].version_warning is None


def test_cpt_without_licence_is_known_by_number_and_says_so(session):
    card = lookup(session, ["99213-25"], FY27)[0]
    assert card.found and card.system == "cpt" and card.title is None
    assert card.status == "unlicensed_descriptor" and "AMA" in card.licence_note
    rvu = next(r for r in card.rvu if r["modifier"] is None)
    assert rvu["work_rvu"] == pytest.approx(1.30)
    assert rvu["national_payment_nonfacility"] == pytest.approx(round(2.75 * 32.3465, 2))
    assert card.ncci["practitioner"]["as_column2"] == 1
    assert card.modifier["code"] == "25" and "separately identifiable" in card.modifier["explanation"]


def test_headers_are_not_billable_and_list_their_children(session):
    card = lookup(session, ["E11.2"], FY27)[0]
    assert card.status == "not_billable" and card.billable is False
    assert [c["code"] for c in card.children] == ["E11.21", "E11.22", "E11.29"]


def test_unknown_code_gets_suggestions(session):
    card = lookup(session, ["E11.99"], FY27)[0].to_dict()
    assert card["found"] is False and card["status"] == "unknown"
    assert "E11.9" in [s["code"] for s in card["suggestions"]]
    junk = lookup(session, ["hello"], FY27)[0]
    assert junk.status == "invalid" and "not shaped like" in junk.message


def test_fy2027_addenda_decide_validity_by_date_of_service(session):
    deleted = lookup(session, ["S23.420A"], FY26)[0], lookup(session, ["S23.420A"], FY27)[0]
    assert [c.status for c in deleted] == ["ok", "terminated"]
    added = lookup(session, ["C78.31"], FY26)[0], lookup(session, ["C78.31"], FY27)[0]
    assert [c.status for c in added] == ["not_yet_valid", "ok"]
    revised_old, revised_new = lookup(session, ["L02.232"], FY26)[0], lookup(session, ["L02.232"], FY27)[0]
    assert revised_old.title.endswith("except buttock]") and revised_new.title.endswith("buttock and flank]")
    assert len(revised_new.history) == 2
    header_now = lookup(session, ["I42.0"], FY27)[0]
    assert header_now.status == "not_billable" and lookup(session, ["I42.0"], FY26)[0].status == "ok"
    assert deleted[0].version.startswith("ICD-10-CM FY2026")


def test_seventh_character_codes_are_billable(session):
    card = lookup(session, ["s52.521a"], FY27)[0]
    assert card.status == "ok" and card.notes["seventh_character"]["char"] == "A"
    assert any(n["code"] == "S52" and "seventh_characters" in n["notes"] for n in card.inherited_notes)
    assert lookup(session, ["S52.521"], FY27)[0].status == "not_billable"


def test_modifiers_have_our_guidance(session):
    cpt_mod, hcpcs_mod = lookup(session, ["-59", "LT"], FY27)
    assert cpt_mod.system == "modifier" and "XE, XS" in cpt_mod.notes["explanation"] and cpt_mod.title is None
    assert hcpcs_mod.title.startswith("Left side") and hcpcs_mod.status == "ok"


def test_verify_flags_what_must_not_reach_a_sender(session):
    verdicts = verify(session, ["E11.22", "E11.2", "E11.99", "S23.420A", "99213", "nonsense"], FY27)
    assert [(v.status, v.ok) for v in verdicts] == [
        ("ok", True), ("not_billable", False), ("unknown", False), ("terminated", False),
        ("unlicensed_descriptor", True), ("invalid", False)]
    assert verdicts[0].version == "ICD-10-CM FY2027"


def test_versions_record_source_dates_counts_and_checksum(session):
    loaded = {(v.kind, v.setting): v for v in versions(session)}
    icd = {v.version: v for v in versions(session) if v.kind == "icd10cm"}
    # FY2016-FY2025 from the history lists, the FY2026 tabular, the FY2027 addenda
    assert list(icd) == ["FY2026 (April 1, 2026 update)", *[f"FY{y}" for y in range(2016, 2026)], "FY2027"]
    fy26 = icd["FY2026 (April 1, 2026 update)"]
    assert icd["FY2027"].effective_from == date(2026, 10, 1) and fy26.effective_to == date(2026, 9, 30)
    assert icd["FY2021"].effective_from == date(2020, 10, 1) and icd["FY2021"].effective_to == date(2021, 9, 30)
    hcpcs = [v for v in versions(session) if v.kind == "hcpcs"]
    assert hcpcs[0].checksum == "e0b73fad41d9fcacfffa73b118d4454aca6aa5e8a5e42f3a24cacb4a192e194e"
    assert hcpcs[1].version == "2026 Apr (I/OCE 27.1.0)" and hcpcs[1].counts["new_in_2026"] > 200
    assert fy26.row_count == 98186 and icd["FY2027"].counts["added"] == 238
    # the yearly list sizes the history README gives (walked back from FY2026)
    assert (icd["FY2016"].row_count, icd["FY2016"].counts["billable"]) == (91737, 69823)
    assert (icd["FY2021"].row_count, icd["FY2025"].row_count) == (95352, 97584)
    assert loaded[("pfs", "")].row_count == 18865
    assert {("ncci", "practitioner"), ("ncci", "hospital"), ("mue", "practitioner"), ("mue", "hospital")} <= set(loaded)


def test_in_memory_facts_answer_as_the_per_code_queries(session, monkeypatch):
    """Issue 16: RVU, MUE, NCCI counts and diagnosis flags read from memory (codes/facts.py)
    give the very cards the per-code queries give, on several dates (NCCI edits deleted and added)."""
    from mailbot.codes import dxedits, facts
    from mailbot.codes import lookup as lookup_module
    from mailbot.codes.knowledge import get_knowledge

    codes = ["99213-25", "J1010", "J1030", "E11.22", "N18.31", "20610", "93000", "G0439", "M17.11", "I10",
             "A0425", "J0696", "99214", "F32.A", "Z00.00"]
    dates = [FY26, FY27, date(2023, 1, 1), date(2021, 6, 30)]
    with monkeypatch.context() as m:
        m.setattr(lookup_module, "facts_of", lambda *a: None)
        m.setattr(dxedits, "facts_of", lambda *a: None)
        by_query = [[c.to_dict() for c in lookup(session, codes, on)] for on in dates]
    built = facts.ensure(session, get_knowledge(session))
    assert built.ncci and built.rvu and built.flags
    assert facts.facts_of(session, get_knowledge(session)) is built
    by_memory = [[c.to_dict() for c in lookup(session, codes, on)] for on in dates]
    assert by_memory == by_query
    # the comparison has teeth: NCCI counts, MUEs and dx flags are there to compare
    assert any(c["ncci"] and c["ncci"]["practitioner"]["as_column1"] for day in by_query for c in day)
    assert any(c["mue"] for day in by_query for c in day)
    assert any(c["dx"] for day in by_query for c in day)
