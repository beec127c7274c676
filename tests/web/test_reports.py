"""The reports page (issue 15): volume per week, time to first reply and to
answer (p50 / p90), per reviewer and per code system, SLA breaches, and the
same figures as CSV -- checked against consultations with known times."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import update

from mailbot.models import Consultation, OutboundMessage, utcnow
from mailbot.services.reports import percentile
from tests.web.conftest import seed_consultation, sign_in


def _answered(db, cid: int, *, hours_to_reply: float, hours_to_answer: float | None, reviewer_id: int | None,
              state: str = "sent") -> None:
    with db.session() as session:
        c = session.get(Consultation, cid)
        session.add(OutboundMessage(kind="answer", consultation_id=cid, to_addr="coder@clinic.example",
                                   from_addr="ask@mailbot.localhost", subject="Re", message_id=f"<a{cid}@x>",
                                   raw=b"x", created_at=c.created_at + timedelta(hours=hours_to_reply)))
        session.exec(update(Consultation).where(Consultation.id == cid).values(
            state=state, approved_by_id=reviewer_id,
            answered_at=c.created_at + timedelta(hours=hours_to_answer) if hours_to_answer is not None else None))


def test_percentiles_are_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50) == 5 and percentile(list(range(1, 11)), 90) == 9


def test_the_report_figures_and_csv(client, db, alice, bob):
    # Alice answered two CPT questions in 2 h and 30 h; Bob one ICD-10-CM question in 4 h;
    # one HCPCS question is still open after 50 h (an SLA breach with no answer yet).
    a1 = seed_consultation(db, age_hours=60, systems=["cpt"])
    a2 = seed_consultation(db, age_hours=50, systems=["cpt"])
    b1 = seed_consultation(db, age_hours=10, systems=["icd10cm"])
    seed_consultation(db, age_hours=50, systems=["hcpcs"])
    _answered(db, a1, hours_to_reply=1, hours_to_answer=2, reviewer_id=alice.id)
    _answered(db, a2, hours_to_reply=30, hours_to_answer=30, reviewer_id=alice.id)
    _answered(db, b1, hours_to_reply=4, hours_to_answer=4, reviewer_id=bob.id)
    sign_in(client, alice)
    page = client.get("/reports")
    assert page.status_code == 200
    for text in ("Alice Moreau", "Bob Okafor", "CPT", "ICD-10-CM", "HCPCS", "Volume per week", "SLA breaches"):
        assert text in page.text

    rows = list(csv.DictReader(io.StringIO(client.get("/reports.csv").text)))
    by = {(r["section"], r["key"]): r for r in rows}
    overall = by[("overall", "all")]
    assert overall["consultations"] == "4"
    assert overall["first_reply_p50_h"] == "4.0" and overall["first_reply_p90_h"] == "30.0"
    assert overall["answer_p50_h"] == "4.0" and overall["answer_p90_h"] == "30.0"
    assert overall["sla_breaches"] == "2"                          # 30 h answer, 50 h open (SLA 24 h)
    alice_row = by[("reviewer", "Alice Moreau")]
    assert alice_row["consultations"] == "2" and alice_row["answer_p50_h"] == "2.0" and alice_row["sla_breaches"] == "1"
    assert by[("reviewer", "Bob Okafor")]["answer_p90_h"] == "4.0"
    assert by[("code_system", "HCPCS")]["answer_p50_h"] == "" and by[("code_system", "HCPCS")]["sla_breaches"] == "1"
    weeks = [r for r in rows if r["section"] == "week"]
    assert sum(int(r["consultations"]) for r in weeks) == 4


def test_a_name_that_looks_like_a_formula_is_defused_in_the_csv(client, db, alice):
    from mailbot.models import Reviewer

    with db.session() as session:
        session.exec(update(Reviewer).where(Reviewer.id == alice.id).values(name="=HYPERLINK(\"x\")"))
    cid = seed_consultation(db, age_hours=3)
    _answered(db, cid, hours_to_reply=1, hours_to_answer=1, reviewer_id=alice.id)
    sign_in(client, alice)
    text = client.get("/reports.csv").text
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_a_bad_window_falls_back_to_twelve_weeks(client, db, alice):
    sign_in(client, alice)
    assert client.get("/reports?weeks=9999").status_code == 200
    assert client.get("/reports?weeks=abc").status_code == 422 or client.get("/reports?weeks=abc").status_code == 200
