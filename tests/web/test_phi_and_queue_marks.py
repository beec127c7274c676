"""Patient data in the queue (issue 15): subjects are shown redacted, items
holding patient data and items with a new reply from the asker are marked,
and an admin can purge patient data from a consultation (audited)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import select

from mailbot.models import Attachment, AuditEvent, Consultation, Draft, InboundMessage, utcnow
from tests.web.conftest import seed_consultation, sign_in

SUBJECT = "Coding question for patient John Smith"


def test_the_queue_shows_subjects_redacted_and_marks_phi_and_new_replies(client, db, alice):
    cid = seed_consultation(db, subject=SUBJECT)
    with db.session() as session:
        session.exec(update(Consultation).where(Consultation.id == cid).values(has_phi=True, new_reply_at=utcnow()))
    sign_in(client, alice)
    page = client.get("/queue").text
    assert "John Smith" not in page and "Coding question for patient [NAME]" in page
    assert "new reply" in page and "patient data" in page
    detail = client.get(f"/consultations/{cid}").text
    assert "<title>Q-%d Coding question for patient [NAME]" % cid in detail
    assert 'id="phi-badge"' in detail


def test_flags_are_explained_not_a_bare_number(client, db, alice):
    seed_consultation(db, flags=2)
    sign_in(client, alice)
    page = client.get("/queue").text
    assert "2 code problems" in page and "Verification problems" in page


def test_an_admin_purges_patient_data_and_it_is_audited(client, db, admin):
    cid = seed_consultation(db, subject=SUBJECT, text="Patient John Smith, DOB 04/12/1961, MRN 00482913: 20610?",
                            draft="For John Smith report 20610.", attachment=("note.pdf", "application/pdf", b"%PDF"))
    with db.session() as session:
        session.exec(update(Consultation).where(Consultation.id == cid).values(has_phi=True))
    token = sign_in(client, admin)
    assert 'id="purge-phi"' in client.get(f"/consultations/{cid}").text
    response = client.post(f"/consultations/{cid}/purge-phi", data={"csrf_token": token})
    assert response.status_code == 303
    with db.read() as session:
        c = session.get(Consultation, cid)
        inbound = session.exec(select(InboundMessage).where(InboundMessage.consultation_id == cid)).one()
        draft = session.exec(select(Draft).where(Draft.consultation_id == cid)).one()
        attachment = session.exec(select(Attachment)).one()
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "phi_purged")).one()
    assert "John Smith" not in c.subject and not c.has_phi
    assert "John Smith" not in inbound.text and "04/12/1961" not in inbound.full_text and inbound.raw == b""
    assert "20610" in inbound.text                                  # the coding question survives
    assert "John Smith" not in draft.body and "20610" in draft.body
    assert attachment.data is None
    assert event.actor == admin.email and event.detail["identifiers"] >= 4
    assert "John Smith" not in str(event.detail)


def test_a_reviewer_cannot_purge(client, db, alice):
    cid = seed_consultation(db, subject=SUBJECT)
    token = sign_in(client, alice)
    response = client.post(f"/consultations/{cid}/purge-phi", data={"csrf_token": token})
    assert response.status_code == 403
    with db.read() as session:
        assert session.get(Consultation, cid).subject == SUBJECT
