"""Each resolver against the shipped code sets (plus the synthetic NCCI / MUE test tables)."""

from datetime import date

import pytest

from mailbot.answers import answer
from mailbot.answers.compose import lead, render
from mailbot.answers.dose import descriptor_dose, units_for

SENT = date(2026, 11, 16)


@pytest.fixture
def session(codes_db, db):
    with db.read() as s:
        yield s


def ask(session, text, **kw):
    return answer(session, text, message_date=kw.pop("message_date", SENT), **kw)


def billed(result):
    return [line.billed for line in result.recommended]


def test_valid_a_billable_code_is_recommended_with_its_version(session):
    result = ask(session, "Is E11.22 billable for DOS 11/20/2026?")
    assert billed(result) == ["E11.22"]
    assert "FY2027" in result.recommended[0].why and result.date_of_service == date(2026, 11, 20)


def test_valid_and_children_a_header_is_not_recommended_its_default_child_is(session):
    result = ask(session, "Is M54.5 still billable? low back pain")
    assert "M54.50" in billed(result) and "M54.5" not in billed(result)
    not_reported = [line.code for line in result.with_role("not_recommended")]
    assert not_reported == ["M54.5"]
    assert {line.code for line in result.with_role("alternative")} >= {"M54.51", "M54.59"}
    assert lead(result).startswith("Report M54.50") and "do not report M54.5 " in lead(result)


def test_replaced_a_terminated_drug_code_names_its_successor_and_units(session):
    result = ask(session, "J1030 was denied for 80 mg Depo-Medrol given 11/4/2026, what do we use now?")
    assert billed(result) == ["J1010 x 80 units"]
    assert "terminated 2024-03-31" in render(result)   # the history's words (codes.successors)
    assert {"intent": "replaced", "trigger": 'words: "replace"'} not in result.intents  # fired on "denied"
    assert "replaced" in {f["intent"] for f in result.intents}


def test_replaced_without_a_dose_converts_one_old_unit(session):
    result = ask(session, "J-1030 replaced by?")
    assert billed(result) == ["J1010 x 40 units"]


def test_children_are_listed_for_a_category(session):
    result = ask(session, "What are the billable codes under N18.3?")
    assert set(billed(result)) == {"N18.30", "N18.31", "N18.32"}


def test_describe_recommends_from_the_question_system_only(session):
    result = ask(session, "What's the ICD-10 for essential hypertension?")
    assert billed(result) == ["I10"]
    assert all(line.system == "icd10cm" for line in result.lines)
    supply = ask(session, "HCPCS for a standard wheelchair?")
    assert billed(supply) == ["K0001"] and all(line.system == "hcpcs" for line in supply.lines)


def test_sequence_use_additional_code_partner_from_the_tabular_note(session):
    result = ask(session, "T2DM with diabetic CKD stage 3a, which code first?")
    assert billed(result)[:2] == ["E11.22", "N18.31"]
    assert any("use additional" in rule.text or "code first" in rule.text for rule in result.rules)
    assert result.ask == ""


def test_sequence_asks_one_question_when_the_stage_is_missing(session):
    result = ask(session, "E11.22 with chronic kidney disease - what else do I code?")
    assert "E11.22" in billed(result) and "stage of chronic kidney disease" in result.ask
    assert not any(line.code.startswith("N18") for line in result.recommended)


def test_sequence_code_first_condition_named_without_detail_takes_its_unspecified_code(session):
    """F02.80's category says "code first Alzheimer's (G30.-)"; the question names Alzheimer's and no kind
    of it, so G30.9 leads -- the manifestation code is never recommended alone."""
    result = ask(session, "Alzheimer's disease with dementia, no behavioral disturbance - codes")
    assert billed(result)[:2] == ["G30.9", "F02.80"]
    assert result.ask == ""
    early = ask(session, "Early onset Alzheimer's disease with dementia, no behavioral disturbance - codes")
    assert billed(early)[:2] == ["G30.0", "F02.80"]


def test_sequence_guideline_hypertension_with_ckd(session):
    result = ask(session, "Hypertension with CKD stage 3b - codes and order?")
    assert {"I12.9", "N18.32"} <= set(billed(result))
    assert any("I.C.9.a.2" in rule.source for rule in result.rules)


@pytest.mark.parametrize("text, expected", [
    ("Kenalog 40 mg injected into knee, how many units of J3301?", "J3301 x 4 units"),
    ("Rocephin 1 gram IM - units for J0696?", "J0696 x 4 units"),
    ("Phenergan 25 mg IM units J2550", "J2550 x 1 unit"),
    # J0171 ended 2025-06-30 (HCPCS April 2026): its successor, same 0.1 mg dose
    ("Epinephrine 0.3 mg, J0171 units?", "J0165 x 3 units"),
])
def test_units_from_the_dose_and_the_descriptor(session, text, expected):
    assert expected in billed(ask(session, text))


def test_units_waste_goes_on_its_own_jw_line(session):
    result = ask(session, "Avastin 400 mg given, 20 mg wasted from single-dose vial - units and modifiers?")
    assert set(billed(result)) == {"J9035 x 40 units", "J9035-JW x 2 units"}


def test_units_ask_for_the_dose_when_it_is_missing(session):
    result = ask(session, "How many units of J3301 do I bill?")
    assert "What dose" in result.ask


def test_dose_arithmetic():
    per = descriptor_dose("Injection, ceftriaxone sodium, per 250 mg")
    assert (per.amount, per.unit) == (250, "mg") and units_for(1, "g", per) == 4
    assert units_for(100, "mcg", descriptor_dose("Injection, fentanyl citrate, 0.1 mg")) == 1
    assert units_for(10, "ml", descriptor_dose("Injection, fentanyl citrate, 0.1 mg")) is None
    assert descriptor_dose("Unclassified drugs") is None


def test_modifier_25_on_the_em_with_a_minor_procedure(session):
    result = ask(session, "Pt had 99213 and a joint injection 20610 same day. Which modifier?")
    assert "99213-25" in billed(result) and "20610" in billed(result)


def test_modifier_bilateral_follows_the_fee_schedule_indicator(session):
    assert "20610-50" in billed(ask(session, "Bilateral knee injections 20610 both knees, how do we bill it?"))


def test_modifier_26_checks_the_pctc_indicator(session):
    result = ask(session, "Radiologist reads chest x-ray 71046 in the hospital, interpretation only")
    assert "71046-26" in billed(result)
    assert any("PC/TC indicator 1" in rule.text for rule in result.rules)


@pytest.mark.parametrize("text, modifier", [
    ("No ABN on file and we expect a medical necessity denial - modifier?", "GZ"),
    ("Medicare pt signed an ABN for a service likely denied", "GA"),
    ("Medicare pt, B12 1000 mcg from a single-dose vial, nothing wasted", "JZ"),
    ("Office visit for an unrelated problem during the 90-day global of 27447", "24"),
])
def test_modifier_situations(session, text, modifier):
    assert modifier in ask(session, text).modifiers


def test_bundle_reports_the_ncci_pair_and_its_table(session):
    result = ask(session, "Can I bill 20610 and 99213 together, same day, physician office?")
    assert "99213-25" in billed(result)
    assert any("NCCI" in rule.source and "practitioner" in rule.source for rule in result.rules)


def test_bundle_global_period_and_add_on(session):
    assert "090" in render(ask(session, "What is the global period of 27447?"))
    assert "add-on" in render(ask(session, "Can 11045 be billed without 11042?"))


def test_bundle_hospital_question_uses_the_shipped_hospital_table(session):
    result = ask(session, "29881 and 29877 same knee, hospital outpatient claim: both billable?")
    assert [line.code for line in result.with_role("not_recommended")] == ["29877"]
    assert result.facts["ncci_setting"]["setting"] == "hospital"
    assert any("hospital" in rule.source.lower() and "29877" in rule.text for rule in result.rules)


def test_bundle_never_claims_a_table_that_is_not_loaded():
    """A practitioner claim with no practitioner table: it decides, it is not loaded, nothing was checked;
    the hospital table's pairs are labelled as facts for another kind of claim."""
    from mailbot.answers.model import Answer
    from mailbot.answers.resolvers.bundle import _pairs

    result = Answer(question="")
    hospital_pair = {"message": "NCCI PTP, hospital outpatient, April 2026: 20610 / 99213", "setting": "hospital"}
    _pairs(result, {"ncci_table": None, "pairs": [], "other_settings": [
        {"setting": "hospital", "table": "NCCI PTP, hospital outpatient, April 2026", "pairs": [hospital_pair]}]},
        "practitioner", "no setting stated", 2)
    text = " ".join(rule.text for rule in result.rules)
    assert "practitioner (professional claim) PTP edits decide" in text and "NOT checked" in text
    assert "for a hospital outpatient claim only" in text
    assert result.facts["ncci_setting"]["table"] == "not loaded" and "ncci_pairs" not in result.facts


def test_diagnosis_edits_state_an_age_conflict_and_ask(session):
    result = ask(session, "O80 for a 70 year old patient, ok?")
    kinds = [edit["kind"] for edit in result.facts.get("diagnosis_edits", [])]
    assert "age" in kinds and "age" in result.ask and "aged 9 to 64" in render(result)
    assert "diagnosis_edits" not in ask(session, "O80 for a 30 year old patient, ok?").facts or \
        "age" not in [e["kind"] for e in ask(session, "O80 for a 30 year old patient, ok?").facts["diagnosis_edits"]]


def test_bundle_indicator_0_pair_is_not_recommended(session):
    result = ask(session, "Can 20610 and 20604 be billed together?")
    assert [line.code for line in result.with_role("not_recommended")] == ["20604"]


def test_no_codes_and_no_description_asks_one_question(session):
    result = ask(session, "hello?")
    assert result.recommended == [] and result.ask and result.confidence < 0.3


def test_a_code_from_the_wrong_system_is_not_invented(session):
    result = ask(session, "Is Z9999 billable?")
    assert result.recommended == []
    assert [line.code for line in result.with_role("not_recommended")] == ["Z99.99"]


def test_contradictory_dates_ask_which_one(session):
    result = ask(session, "Is J1030 valid? DOS 03/01/2024 or DOS 05/01/2024?")
    assert "Which date is the date of service" in result.ask


def test_an_old_date_of_service_gets_the_code_valid_then(session):
    result = ask(session, "J1030 40 mg, DOS 03/01/2024")
    assert billed(result) == ["J1030 x 1 unit"]


def test_a_follow_up_inherits_the_thread(session):
    history = [{"who": "asker", "text": "J1030 replaced by? DOS 11/4/2026"},
               {"who": "reviewer", "text": "Report J1010; what dose was given?"}]
    result = ask(session, "It was 80 mg.", history=history)
    assert billed(result) == ["J1010 x 80 units"] and result.date_of_service == date(2026, 11, 4)


def test_confidence_is_computed(session):
    sure = ask(session, "Is E11.22 billable for DOS 11/20/2026?").confidence
    unsure = ask(session, "How many units of J3301 do I bill?").confidence
    assert sure > unsure and sure != 0.3


def test_the_answer_is_deterministic(session):
    text = "Pt got Kenalog 40 mg into R knee (20610) plus an E/M 99213 for separate HTN management"
    assert render(ask(session, text)) == render(ask(session, text))


def test_a_diagnosis_described_beside_a_named_procedure_is_coded(session):
    result = ask(session, "Chest x-ray 71046 interpretation only for pneumonia, unspecified organism")
    assert {"71046-26", "J18.9"} <= set(billed(result))
    only_procedure = ask(session, "Is 20610 billable for Medicare?")
    assert [line.system for line in only_procedure.recommended] == ["cpt"]
