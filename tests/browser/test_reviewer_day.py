"""What a reviewer sees in Chromium (issue 15): their saved text survives a
follow-up, with the new message and the drafter's new suggestion beside it;
versions are compared and restored from the page; the preview shows the mail
before the final confirm; the guard refuses a header code with its reason and
an override sends with the reason audited; the reject reply box stays hidden
until it is wanted."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from mailbot.models import AuditEvent, Draft, InboundMessage, InboundStatus, utcnow
from tests.browser.conftest import add_reviewer, seed_consultation
from tests.browser.test_review_flow import log_in

pytestmark = pytest.mark.browser

MINE = "My careful answer: 20610 with modifier 25 on the visit."


def _follow_up(db, cid: int, text: str, suggestion: str) -> None:
    """What the pipeline stores when the asker writes again: the message, then a new machine draft."""
    now = utcnow() + timedelta(seconds=1)
    with db.session() as session:
        session.add(InboundMessage(source="smtp", envelope_from="coder@clinic.example",
                                   envelope_to=["ask@mailbot.localhost"], raw=b"Subject: x\r\n\r\nx",
                                   raw_sha256="f" * 64, message_id="<q2@clinic.example>",
                                   from_addr="coder@clinic.example", from_name="Casey Coder", subject="Re: knee",
                                   text=text, full_text=text, status=InboundStatus.PROCESSED, action="followup",
                                   consultation_id=cid, received_at=now))
        session.add(Draft(consultation_id=cid, source="offline", body=suggestion, created_at=now))


def test_a_follow_up_keeps_my_text_and_shows_whats_new_and_i_can_take_the_suggestion(live, page, db):
    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    cid = seed_consultation(db, cited=[], draft="Model draft.")
    log_in(page, live.url, alice.email)
    page.goto(f"{live.url}/consultations/{cid}")
    page.click("#claim")
    page.fill("#draft-body", MINE)
    page.click("#save")
    expect(page.locator(".notice")).to_have_text("Draft saved.")

    _follow_up(db, cid, "It was both knees, by the way.", "Suggestion: report 20610 with modifier 50.")
    page.goto(f"{live.url}/consultations/{cid}")
    expect(page.locator("#draft-body")).to_have_value(MINE)
    box = page.locator("#new-since-draft")
    expect(box).to_contain_text("nothing was replaced")
    expect(box).to_contain_text("It was both knees, by the way.")
    expect(page.locator("#suggestion-body")).to_have_text("Suggestion: report 20610 with modifier 50.")

    page.click("#compare-suggestion")
    expect(page.locator("#compare .diff .del")).to_contain_text(MINE)
    expect(page.locator("#compare .diff .add")).to_contain_text("modifier 50")
    page.go_back()
    page.click("#use-suggestion")
    expect(page.locator(".notice")).to_contain_text("current draft again")
    expect(page.locator("#draft-body")).to_have_value("Suggestion: report 20610 with modifier 50.")

    page.click("#versions-link")
    expect(page.locator("#versions tbody tr")).to_have_count(4)   # model, mine, suggestion, restored
    # My text is still one click away.
    mine_row = page.locator("#versions tbody tr", has_text="My careful answer")
    mine_row.locator("button.restore").click()
    expect(page.locator("#draft-body")).to_have_value(MINE)


def test_the_preview_refuses_a_header_code_and_an_audited_override_sends(live, page, db, codes_db):
    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    cid = seed_consultation(db, subject="Low back pain code", text="Which ICD-10 code for low back pain?",
                            cited=[], draft="Draft.", systems=["icd10cm"])
    log_in(page, live.url, alice.email)
    page.goto(f"{live.url}/consultations/{cid}")
    page.click("#claim")
    page.fill("#draft-body", "Hello Casey,\n\nKeep using M54.5 for low back pain.\n\nAlice Moreau, CPC")
    page.click("#preview-send")

    expect(page.locator("#guard-problems")).to_contain_text("M54.5 is a header (category) code")
    text = page.locator("#preview-text").inner_text()
    assert text.count("Hello") == 1 and text.count("Alice Moreau, CPC") == 1     # one greeting, one signature
    frame = page.frame_locator("#preview-html")
    expect(frame.locator("table.codes")).to_contain_text("M54.5")
    expect(page.locator("#approve")).to_have_text("Override and send")

    page.fill("#override-reason", "The asker's payer still takes M54.5; they asked about it directly.")
    page.click("#approve")
    expect(page.locator(".notice")).to_contain_text("Approved")
    sent = live.relay.wait_for(1)[0].message
    assert "Keep using M54.5" in sent.get_body(("plain",)).get_content()
    with db.read() as session:
        override = session.exec(select(AuditEvent).where(AuditEvent.action == "approval_override")).one()
    assert "payer still takes M54.5" in override.after


def test_without_override_the_refusal_names_the_reason_on_the_page(live, page, db, codes_db):
    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    cid = seed_consultation(db, cited=[], draft="Draft.", text="Which drug code? DOS 03/15/2026")
    log_in(page, live.url, alice.email)
    page.goto(f"{live.url}/consultations/{cid}")
    page.click("#claim")
    page.fill("#draft-body", "Bill J1030 x 1 for the injection.")
    page.click("#preview-send")
    expect(page.locator("#guard-problems")).to_contain_text("J1030 is not valid")
    page.locator("#override-reason").evaluate("el => el.removeAttribute('required')")
    page.click("#approve")
    expect(page.locator(".error")).to_contain_text("Not sent")
    expect(page.locator("#guard-problems")).to_contain_text("J1030")
    expect(page.locator("#draft-body")).to_have_value("Bill J1030 x 1 for the injection.")   # text kept
    assert live.relay.messages == []


def test_the_reject_reply_box_is_hidden_until_ticked(live, page, db):
    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    cid = seed_consultation(db, cited=[], claimed_by=alice.id)
    log_in(page, live.url, alice.email)
    page.goto(f"{live.url}/consultations/{cid}")
    page.click("text=Ask for more information, reject, or regenerate")
    expect(page.locator("#reject-reply")).to_be_hidden()
    page.check("input[name=send_reply]")
    expect(page.locator("#reject-reply")).to_be_visible()


def _overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_at_390_px_the_queue_filters_do_not_overlap_the_buttons(live, browser, db):
    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    seed_consultation(db, cited=[])
    context = browser.new_context(viewport={"width": 390, "height": 844})
    phone = context.new_page()
    try:
        log_in(phone, live.url, alice.email)
        take_next = phone.locator("#take-next").bounding_box()
        # Not floated into the filter area (where, with longer names in the selects, it covered them).
        assert not _overlap(take_next, phone.locator(".filters").bounding_box())
        controls = phone.locator(".filters input, .filters select, .filters button, .filters label")
        for i in range(controls.count()):
            box = controls.nth(i).bounding_box()
            assert not _overlap(take_next, box), (i, take_next, box)
            assert box["x"] + box["width"] <= 390 + 1, box
    finally:
        context.close()


def test_the_audit_page_fits_the_window_with_long_texts(live, page, db):
    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    cid = seed_consultation(db, cited=[])
    with db.session() as session:
        session.add(AuditEvent(consultation_id=cid, actor="alice@coders.example", action="draft_saved",
                               before="", after="x" * 3000 + " " + "long-line-" * 300))
    log_in(page, live.url, alice.email)
    page.goto(f"{live.url}/consultations/{cid}/audit")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1400, width
    expect(page.locator("dl.details, .ba").first).to_be_visible()


def test_the_favicon_loads_on_the_login_page(live, page, db):
    response = page.goto(f"{live.url}/favicon.ico")
    assert response.status == 200


def test_a_question_is_worked_from_queue_to_sent_answer_with_the_keyboard_alone(live, page, db):
    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    older = seed_consultation(db, subject="Older question", cited=[], draft="Draft one.", age_hours=5)
    cid = seed_consultation(db, subject="Keyboard question", cited=[], draft="Draft two.", age_hours=1)
    log_in(page, live.url, alice.email)

    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    expect(page.locator("#shortcuts")).to_contain_text("approve and send")
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()

    page.keyboard.press("j")                                   # the oldest item
    expect(page.locator("tr.selected")).to_contain_text(f"Q-{older}")
    page.keyboard.press("j")                                   # the next one
    expect(page.locator("tr.selected")).to_contain_text(f"Q-{cid}")
    page.keyboard.press("k")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Keyboard question")
    page.keyboard.press("c")
    expect(page.locator(".notice")).to_have_text("You have claimed this consultation.")
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.type("Yes: append modifier 25 to the visit code when the E/M is separately identifiable.")
    page.keyboard.press("Control+s")
    expect(page.locator(".notice")).to_have_text("Draft saved.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#preview-text")).to_contain_text("append modifier 25")
    page.keyboard.press("a")
    expect(page.locator(".notice")).to_contain_text("Approved")
    sent = live.relay.wait_for(1)[0].message
    assert "append modifier 25" in sent.get_body(("plain",)).get_content()
    assert sent["Subject"].endswith(f"[#Q-{cid}]")


def test_queue_redacts_marks_and_searches_and_the_editor_inserts_macros_and_notes(live, page, db):
    from sqlalchemy import update

    from mailbot.models import Consultation, Macro

    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    cid = seed_consultation(db, subject="Coding question for patient John Smith", cited=[], draft="Short draft.",
                            text="Can we bill 64483 with 64484 for the same session?")
    seed_consultation(db, subject="Other", text="Nothing relevant.", cited=[])
    with db.session() as session:
        session.exec(update(Consultation).where(Consultation.id == cid).values(has_phi=True, new_reply_at=utcnow()))
        session.add(Macro(name="Date please", body="Hi {asker_first_name}, what is the date of service for {reference}?"))
    log_in(page, live.url, alice.email)
    row = page.locator("table.grid tbody tr", has_text=f"Q-{cid}")
    expect(row).to_contain_text("Coding question for patient [NAME]")
    expect(row).not_to_contain_text("John Smith")
    expect(row.locator(".new-reply")).to_have_text("new reply")
    expect(row.locator(".phi")).to_have_text("patient data")

    page.fill("input[name=q]", "64484")
    page.press("input[name=q]", "Enter")
    expect(page.locator("table.grid tbody tr")).to_have_count(1)
    expect(page.locator("table.grid tbody tr")).to_contain_text(f"Q-{cid}")

    page.goto(f"{live.url}/consultations/{cid}")
    page.click("#claim")
    page.locator("#draft-body").evaluate("el => el.setSelectionRange(el.value.length, el.value.length)")
    page.select_option("#macro-pick", label="Date please")
    page.click("#insert-macro")
    expect(page.locator("#draft-body")).to_have_value(
        f"Short draft.\n\nHi Casey, what is the date of service for Q-{cid}?")
    page.fill("#note-body", "Asked for the DOS; expect a reply tomorrow.")
    page.click("#add-note")
    expect(page.locator("#notes")).to_contain_text("Asked for the DOS; expect a reply tomorrow.")
    expect(page.locator("#notes")).to_contain_text("Alice Moreau")
