"""The editor's guard rails through the web app: the preview page shows the
exact mail before the final confirm, a refused approval shows why and offers
an audited override, and draft versions are listed, compared and restored."""

from __future__ import annotations

import html
import re

from sqlmodel import select

from mailbot.models import AuditEvent, Consultation, Draft, OutboundMessage
from tests.web.conftest import seed_consultation, sign_in

BODY = "Yes: append modifier 25 to the visit code when the E/M is separately identifiable."  # no codes: the web tests load no code sets


def _version(db, cid: int) -> int:
    with db.read() as session:
        return session.get(Consultation, cid).version


def test_preview_shows_the_mail_and_sends_nothing(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, cited=[])
    token = sign_in(client, alice)
    page = client.post(f"/consultations/{cid}/preview",
                       data={"body": BODY, "version": _version(db, cid), "csrf_token": token})
    assert page.status_code == 200
    assert "unsafe-inline" in page.headers["content-security-policy"]          # the mail's inlined CSS
    assert "script-src 'self'" in page.headers["content-security-policy"]
    text = html.unescape(re.search(r'<pre class="body mail-text" id="preview-text">(.*?)</pre>', page.text, re.S)[1])
    assert "Hello Casey Coder," in text and "Alice Moreau, CPC" in text and "modifier 25" in text
    assert 'sandbox=""' in page.text and "srcdoc=" in page.text
    assert 'id="approve"' in page.text
    with db.read() as session:
        assert session.exec(select(OutboundMessage)).all() == []


def test_preview_needs_the_claim(client, db, alice, bob):
    cid = seed_consultation(db, claimed_by=bob.id, cited=[])
    token = sign_in(client, alice)
    page = client.post(f"/consultations/{cid}/preview",
                       data={"body": BODY, "version": _version(db, cid), "csrf_token": token})
    assert page.status_code == 409 and "Bob Okafor" in page.text


def test_refused_approval_shows_the_reason_and_an_override_sends_with_audit(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, cited=[])
    token = sign_in(client, alice)
    body = "[Offline draft: composed from the code knowledge base without an LLM.]\n\nNo codes needed here."
    refused = client.post(f"/consultations/{cid}/approve",
                          data={"body": body, "version": _version(db, cid), "csrf_token": token})
    assert refused.status_code == 422
    assert "Offline draft" in refused.text and 'id="guard-problems"' in refused.text
    assert 'id="override-reason"' in refused.text
    with db.read() as session:
        assert session.exec(select(OutboundMessage)).all() == []
    sent = client.post(f"/consultations/{cid}/approve",
                       data={"body": body, "version": _version(db, cid), "csrf_token": token,
                             "override_reason": "The asker asked to see the raw offline draft."})
    assert sent.status_code == 303
    with db.read() as session:
        override = session.exec(select(AuditEvent).where(AuditEvent.action == "approval_override")).one()
        assert "raw offline draft" in override.after and len(session.exec(select(OutboundMessage)).all()) == 1


def test_a_later_machine_draft_does_not_replace_the_saved_text(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, cited=[], draft="First model draft.")
    token = sign_in(client, alice)
    assert client.post(f"/consultations/{cid}/save", data={"body": "My own answer.", "version": _version(db, cid),
                                                          "csrf_token": token}).status_code == 303
    with db.session() as session:
        session.add(Draft(consultation_id=cid, source="offline", body="Offline suggestion after a follow-up."))
    page = client.get(f"/consultations/{cid}").text
    editor = html.unescape(re.search(r'<textarea name="body" id="draft-body"[^>]*>(.*?)</textarea>', page, re.S)[1])
    assert editor == "My own answer."
    assert 'id="new-since-draft"' in page and "Offline suggestion after a follow-up." in page


def test_versions_are_listed_compared_and_restored(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, cited=[], draft="Line one.\nLine two.")
    token = sign_in(client, alice)
    client.post(f"/consultations/{cid}/save", data={"body": "Line one.\nLine 2, edited.", "version": _version(db, cid),
                                                    "csrf_token": token})
    with db.read() as session:
        first, second = session.exec(select(Draft).where(Draft.consultation_id == cid).order_by(Draft.id)).all()
    listing = client.get(f"/consultations/{cid}/drafts")
    assert listing.status_code == 200
    assert "-Line two." in html.unescape(listing.text) and "+Line 2, edited." in html.unescape(listing.text)
    compared = client.get(f"/consultations/{cid}/drafts", params={"a": second.id, "b": first.id})
    assert "+Line two." in html.unescape(compared.text)
    assert client.get(f"/consultations/{cid}/drafts", params={"a": 999999}).status_code == 404

    restored = client.post(f"/consultations/{cid}/drafts/{first.id}/restore",
                           data={"version": _version(db, cid), "csrf_token": token})
    assert restored.status_code == 303
    with db.read() as session:
        rows = session.exec(select(Draft).where(Draft.consultation_id == cid).order_by(Draft.id)).all()
        assert [d.body for d in rows] == ["Line one.\nLine two.", "Line one.\nLine 2, edited.", "Line one.\nLine two."]
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "draft_restored")).one()
    # A stale restore (old version number) is refused and changes nothing.
    stale = client.post(f"/consultations/{cid}/drafts/{second.id}/restore", data={"version": 1, "csrf_token": token})
    assert stale.status_code == 409
    with db.read() as session:
        assert len(session.exec(select(Draft).where(Draft.consultation_id == cid)).all()) == 3


def test_restoring_a_draft_of_another_consultation_is_refused(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, cited=[])
    other = seed_consultation(db, cited=[], draft="Someone else's draft.")
    token = sign_in(client, alice)
    with db.read() as session:
        foreign = session.exec(select(Draft).where(Draft.consultation_id == other)).one()
    response = client.post(f"/consultations/{cid}/drafts/{foreign.id}/restore",
                           data={"version": _version(db, cid), "csrf_token": token})
    assert response.status_code == 422 and "not a version" in response.text


def test_the_editor_shows_the_greeting_and_signature_the_template_adds(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, cited=[])
    sign_in(client, alice)
    page = client.get(f"/consultations/{cid}").text
    assert 'id="frame-greeting"' in page and "Hello Casey Coder," in page
    assert re.search(r'id="frame-signature"[^>]*>Alice Moreau, CPC', page)


def test_the_reject_reply_box_is_hidden_by_css_until_needed(client):
    css = client.get("/static/app.css").text
    assert "[hidden] { display:none !important; }" in css
