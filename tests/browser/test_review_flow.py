"""A reviewer's day in a real browser: log in, claim, edit, approve and
send -- the reply reaches the relay with the edited text, in the thread --
and a second reviewer cannot touch the claimed item."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from mailbot.models import Consultation, ConsultationState
from tests.browser.conftest import add_reviewer, seed_consultation
from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.browser

EDITED = "Yes. Report the injection and the visit; append modifier 25 to the visit code only when the E/M is significant and separately identifiable."


def log_in(page, base: str, email: str) -> None:
    page.goto(base + "/queue")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/queue$"))


def test_reviewer_claims_edits_approves_and_the_reply_is_sent(live, page, db):
    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    cid = seed_consultation(db, subject="Injection and office visit same day", cited=[],
                            draft="Draft answer from the model, to be edited.")
    log_in(page, live.url, alice.email)

    page.click(f"text=Q-{cid}")
    expect(page.locator("h1")).to_contain_text("Injection and office visit same day")
    page.click("#claim")
    expect(page.locator(".notice")).to_have_text("You have claimed this consultation.")

    page.fill("#draft-body", EDITED)
    page.click("#preview-send")                            # the preview is the final confirm
    expect(page.locator("#preview-text")).to_contain_text("append modifier 25")
    page.click("#approve")
    expect(page.locator(".notice")).to_contain_text("Approved")

    sent = live.relay.wait_for(1)[0]
    message = sent.message
    assert sent.recipients == ["coder@clinic.example"]
    assert message["In-Reply-To"] == "<q1@clinic.example>"
    assert "append modifier 25 to the visit code only" in " ".join(message.get_body(("plain",)).get_content().split())

    def sent_state() -> str:
        with db.read() as session:
            return session.get(Consultation, cid).state

    expect_state = ConsultationState.SENT
    for _ in range(100):
        if sent_state() == expect_state:
            break
        page.wait_for_timeout(100)
    assert sent_state() == expect_state


def test_second_reviewer_is_blocked_from_a_claimed_item(live, browser, page, db):
    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    add_reviewer(db, "bob@coders.example", "Bob Okafor")
    cid = seed_consultation(db, cited=[], draft="Draft answer.")
    log_in(page, live.url, alice.email)
    page.goto(f"{live.url}/consultations/{cid}")
    page.click("#claim")

    other = browser.new_context().new_page()
    try:
        log_in(other, live.url, "bob@coders.example")
        other.goto(f"{live.url}/queue")
        expect(other.locator("tbody tr").first).to_contain_text("Alice Moreau")
        other.goto(f"{live.url}/consultations/{cid}")
        expect(other.locator("#claimed-by-other")).to_contain_text("Claimed by Alice Moreau")
        expect(other.locator("#approve")).to_have_count(0)
        expect(other.locator("#claim")).to_have_count(0)
        assert other.locator("#draft-body").get_attribute("readonly") is not None
    finally:
        other.context.close()


def test_hostile_mail_runs_nothing_and_loads_nothing_remote_in_the_browser(live, page, db):
    from tests.web.test_xss import PAYLOADS

    alice = add_reviewer(db, "alice@coders.example", "Alice Moreau")
    cid = seed_consultation(db, subject='<img src=x onerror="alert(\'subject\')">', cited=[],
                            text='<script>alert("text")</script>', html="<p>Hello</p>" + "".join(PAYLOADS))
    log_in(page, live.url, alice.email)
    dialogs, requests = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{live.url}/consultations/{cid}")
    page.locator("details.html summary").click()          # show the sanitized original
    page.hover("text=hover")
    page.click("text=click")                               # javascript: links were removed
    page.wait_for_timeout(300)
    assert dialogs == []
    assert requests and all(url.startswith(live.url) for url in requests), requests
    assert page.evaluate("document.querySelectorAll('.mailhtml script, .mailhtml iframe, .mailhtml svg').length") == 0
