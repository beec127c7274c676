"""Reviewer actions on the detail page, through the consultation service:
save, approve and send, request information, reject, regenerate -- and the
optimistic lock that keeps two edits from overwriting each other."""

from __future__ import annotations

import re

from mailbot.models import AuditEvent, Consultation, ConsultationState, Draft, OutboundMessage
from sqlmodel import select

from tests.web.conftest import seed_consultation, sign_in

# Answers without codes: these tests are about the page and the lock, not the
# code sets (verification of cited codes is the consultation service's own test).
EDITED = "Bill the injection and the visit; the visit needs its own documentation.\n\nEdited by the reviewer."


def _version(db, cid: int) -> int:
    with db.read() as session:
        return session.get(Consultation, cid).version


def test_save_keeps_the_edit_and_bumps_the_version(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, draft="Original draft without codes.", cited=[])
    token = sign_in(client, alice)
    response = client.post(f"/consultations/{cid}/save", data={"csrf_token": token, "body": EDITED, "version": "1"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/consultations/{cid}?done=saved"
    page = client.get(response.headers["location"]).text
    assert "Draft saved." in page and "Edited by the reviewer." in page
    assert _version(db, cid) == 2
    audit = client.get(f"/consultations/{cid}/audit").text
    assert "draft saved" in audit and "Original draft without codes." in audit and "Edited by the reviewer." in audit


def test_stale_edit_is_refused_and_the_typed_text_is_kept(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, draft="Original draft.", cited=[])
    token = sign_in(client, alice)
    # Given the page was loaded at version 1 and someone then saved (version 2)
    assert client.post(f"/consultations/{cid}/save",
                       data={"csrf_token": token, "body": "first save", "version": "1"}).status_code == 303
    # When a save based on version 1 arrives
    response = client.post(f"/consultations/{cid}/save",
                           data={"csrf_token": token, "body": "my late edit", "version": "1"})
    # Then it is refused clearly, nothing is overwritten, and the text is kept in the editor
    assert response.status_code == 409
    assert "Someone changed this consultation after you opened it" in response.text
    assert re.search(r'<textarea name="body" id="draft-body"[^>]*>my late edit</textarea>', response.text)
    assert 'name="version" value="2"' in response.text
    with db.read() as session:
        latest = session.exec(select(Draft).where(Draft.consultation_id == cid).order_by(Draft.id.desc())).first()
    assert latest.body == "first save"


def test_approve_queues_the_edited_answer_in_the_thread(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, draft="Original draft.", cited=[])
    token = sign_in(client, alice)
    response = client.post(f"/consultations/{cid}/approve", data={"csrf_token": token, "body": EDITED, "version": "1"})
    assert response.status_code == 303, response.text
    with db.read() as session:
        c = session.get(Consultation, cid)
        out = session.exec(select(OutboundMessage).where(OutboundMessage.consultation_id == cid)).one()
    assert c.state == ConsultationState.APPROVED and c.approved_by_id == alice.id
    assert out.kind == "answer" and out.to_addr == "coder@clinic.example"
    assert b"Edited by the reviewer." in out.raw.replace(b"=\r\n", b"")
    assert "Approved: the answer is on its way" in client.get(response.headers["location"]).text


def test_approving_twice_is_refused_as_not_possible_now(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, draft="Original draft.", cited=[])
    token = sign_in(client, alice)
    assert client.post(f"/consultations/{cid}/approve",
                       data={"csrf_token": token, "body": EDITED, "version": "1"}).status_code == 303
    again = client.post(f"/consultations/{cid}/approve",
                        data={"csrf_token": token, "body": EDITED, "version": str(_version(db, cid))})
    assert again.status_code == 409 and "not possible now" in again.text
    with db.read() as session:
        assert len(session.exec(select(OutboundMessage).where(OutboundMessage.consultation_id == cid)).all()) == 1


def test_request_info_writes_to_the_asker(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, draft="Original draft.", cited=[])
    token = sign_in(client, alice)
    empty = client.post(f"/consultations/{cid}/request-info", data={"csrf_token": token, "question": " ", "version": "1"})
    assert empty.status_code == 422
    response = client.post(f"/consultations/{cid}/request-info",
                           data={"csrf_token": token, "question": "Which knee, and was imaging done?", "version": "1"})
    assert response.status_code == 303, response.text
    with db.read() as session:
        assert session.get(Consultation, cid).state == ConsultationState.NEEDS_INFO
        out = session.exec(select(OutboundMessage).where(OutboundMessage.consultation_id == cid)).one()
    assert out.kind == "needs_info" and b"Which knee" in out.raw


def test_reject_with_and_without_reply(client, db, alice):
    quiet = seed_consultation(db, claimed_by=alice.id, cited=[])
    told = seed_consultation(db, claimed_by=alice.id, cited=[])
    token = sign_in(client, alice)
    assert client.post(f"/consultations/{quiet}/reject",
                       data={"csrf_token": token, "reason": "spam", "version": "1"}).status_code == 303
    missing = client.post(f"/consultations/{told}/reject", data={"csrf_token": token, "reason": "out of scope",
                                                                 "send_reply": "1", "version": "1"})
    assert missing.status_code == 422
    response = client.post(f"/consultations/{told}/reject", data={
        "csrf_token": token, "reason": "out of scope", "send_reply": "1", "version": "1",
        "reply_text": "We only answer coding questions; please ask your payer about coverage."})
    assert response.headers["location"].endswith("done=rejected_replied")
    with db.read() as session:
        assert session.get(Consultation, quiet).state == ConsultationState.REJECTED
        assert session.exec(select(OutboundMessage).where(OutboundMessage.consultation_id == quiet)).all() == []
        out = session.exec(select(OutboundMessage).where(OutboundMessage.consultation_id == told)).one()
        actions = session.exec(select(AuditEvent.action).where(AuditEvent.consultation_id == told)).all()
    assert b"ask your payer" in out.raw.replace(b"=\r\n", b"")
    assert "rejected" in actions


def test_regenerate_moves_back_to_drafting(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id, cited=[])
    token = sign_in(client, alice)
    response = client.post(f"/consultations/{cid}/regenerate", data={"csrf_token": token})
    assert response.headers["location"].endswith("done=regenerating")
    with db.read() as session:
        assert session.get(Consultation, cid).state == ConsultationState.DRAFTING
