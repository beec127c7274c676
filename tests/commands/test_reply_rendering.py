"""The HTML part of a LOOKUP reply, as a mail client shows it: rendered by
headless Chromium with every remote request blocked."""

from __future__ import annotations

import pytest

from mailbot.commands import runner
from tests.commands.support import bodies, parsed, replies, routed_command


@pytest.mark.browser
def test_a_lookup_reply_renders_offline_with_styled_cards(ctx, codes_db, db, tmp_path, browser):
    inbound_id = routed_command(db, "LOOKUP 50250 J1030 E11.22 X99.99", "")
    runner.run(ctx, inbound_id)
    _, html = bodies(parsed(replies(db, inbound_id)[0]))

    blocked: list[str] = []
    page = browser.new_page(viewport={"width": 760, "height": 900})
    try:
        page.route("**/*", lambda route: (blocked.append(route.request.url), route.abort()))
        page.set_content(html, wait_until="load")
        cards = page.locator(".card")
        text = page.inner_text("body")
        background = page.eval_on_selector(".card", "e => getComputedStyle(e).backgroundColor")
        unknown_border = page.eval_on_selector(".card-unknown", "e => getComputedStyle(e).borderLeftColor")
        card_count = cards.count()
        page.screenshot(path=str(tmp_path / "lookup.png"), full_page=True)
    finally:
        page.close()

    assert card_count == 4
    assert "E11.22" in text and "J1030" in text and "50250" in text
    assert "Type 2 diabetes mellitus with diabetic chronic kidney disease" in text
    assert "AMA" in text                       # the CPT card carries the licence note, not a descriptor
    assert "not found" in text and "Did you mean" in text
    assert background == "rgb(255, 255, 255)"  # inlined CSS applied without a <style> block
    assert unknown_border == "rgb(192, 57, 43)"
    assert blocked == []                       # nothing remote to load
    assert (tmp_path / "lookup.png").stat().st_size > 10_000
