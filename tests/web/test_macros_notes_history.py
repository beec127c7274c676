"""Helpdesk tools (issue 15): canned responses that admins manage and
reviewers insert with variables filled; internal notes that are never sent;
the asker's earlier questions and answers on the detail page."""

from __future__ import annotations

import html
import re

from sqlmodel import select

from mailbot.models import AuditEvent, Consultation, ConsultationNote, Macro, OutboundMessage
from tests.web.conftest import seed_consultation, sign_in

MACRO = "Hi {asker_first_name}, thanks for {reference}. The codes {codes} were checked by {reviewer}, {reviewer_credential}."


def _editor(page: str) -> str:
    return html.unescape(re.search(r'<textarea name="body" id="draft-body"[^>]*>(.*?)</textarea>', page, re.S)[1])


def test_an_admin_writes_a_macro_and_a_typo_in_a_variable_is_refused(client, db, admin):
    token = sign_in(client, admin)
    bad = client.post("/admin/macros", data={"name": "Thanks", "body": "Hi {asker_nmae}", "csrf_token": token})
    assert bad.status_code == 422 and "asker_nmae" in html.unescape(bad.text) and "Hi {asker_nmae}" in html.unescape(bad.text)
    ok = client.post("/admin/macros", data={"name": "Thanks", "body": MACRO, "csrf_token": token})
    assert ok.status_code == 303
    dup = client.post("/admin/macros", data={"name": "Thanks", "body": "x", "csrf_token": token})
    assert dup.status_code == 422 and "already" in dup.text
    with db.read() as session:
        [macro] = session.exec(select(Macro)).all()
    changed = client.post("/admin/macros", data={"name": "Thanks", "body": MACRO + " Bye.", "macro_id": macro.id,
                                                 "csrf_token": token})
    assert changed.status_code == 303
    assert client.post(f"/admin/macros/{macro.id}/retire", data={"csrf_token": token}).status_code == 303
    with db.read() as session:
        row = session.get(Macro, macro.id)
    assert row.body.endswith("Bye.") and not row.active


def test_a_reviewer_cannot_manage_macros(client, db, alice):
    token = sign_in(client, alice)
    assert client.get("/admin/macros").status_code == 403
    assert client.post("/admin/macros", data={"name": "x", "body": "y", "csrf_token": token}).status_code == 403


def test_a_macro_is_inserted_with_its_variables_filled(client, db, admin, alice):
    with db.session() as session:
        session.add(Macro(name="Thanks", body=MACRO))
    cid = seed_consultation(db, claimed_by=alice.id)
    token = sign_in(client, alice)
    page = client.get(f"/consultations/{cid}").text
    assert 'id="insert-macro"' in page
    with db.read() as session:
        macro = session.exec(select(Macro)).one()
    inserted = client.post(f"/consultations/{cid}/insert-macro",
                           data={"body": "My text.", "macro_id": str(macro.id), "csrf_token": token})
    assert inserted.status_code == 200
    text = _editor(inserted.text)
    assert text == (f"My text.\n\nHi Casey, thanks for Q-{cid}. The codes 20610, 99213 were checked by "
                    "Alice Moreau, CPC.")
    with db.read() as session:
        assert session.get(Consultation, cid).version == 1          # inserting saves nothing


def test_notes_are_kept_shown_to_reviewers_and_never_sent(client, db, alice, bob):
    cid = seed_consultation(db, claimed_by=alice.id, cited=[], draft="Short answer without codes.")
    token = sign_in(client, bob)                                  # no claim needed for a note
    response = client.post(f"/consultations/{cid}/notes", data={"note": "Asker is a repeat caller; be brief.",
                                                                "csrf_token": token})
    assert response.status_code == 303
    assert client.post(f"/consultations/{cid}/notes", data={"note": "  ", "csrf_token": token}).status_code == 422
    assert client.post("/consultations/999999/notes", data={"note": "x", "csrf_token": token}).status_code == 404
    page = client.get(f"/consultations/{cid}").text
    assert "Asker is a repeat caller; be brief." in page and "never sent" in page
    with db.read() as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "note_added")).one().actor == bob.email
        assert len(session.exec(select(ConsultationNote)).all()) == 1

    token = sign_in(client, alice)
    client.post(f"/consultations/{cid}/approve", data={"body": "Short answer without codes.", "version": 1,
                                                      "csrf_token": token})
    with db.read() as session:
        [out] = session.exec(select(OutboundMessage)).all()
    assert b"repeat caller" not in out.raw


def test_the_asker_history_lists_earlier_questions_and_answers(client, db, alice):
    old = seed_consultation(db, subject="Earlier knee question", state="sent", age_hours=200, cited=[],
                            draft="Earlier answer.")
    with db.session() as session:
        from mailbot.models import Draft

        session.add(Draft(consultation_id=old, source="reviewer", body="Our earlier answer: use 20610."))
    other = seed_consultation(db, subject="Someone else", asker="other@clinic.example")
    cid = seed_consultation(db, subject="New question")
    sign_in(client, alice)
    page = client.get(f"/consultations/{cid}").text
    history = page[page.index('id="history"'):page.index('id="lookup"')]
    assert f"Q-{old}" in history and "Earlier knee question" in history and "Our earlier answer: use 20610." in history
    assert f"Q-{other}" not in history and f">Q-{cid}<" not in history
