"""Notices to reviewers (issue 15): mail to the assignee when an admin
assigns an item to them, none when they turned notices off, none to the
admin who assigned it; the reviewer's own opt-out on the account page.
(The "asker replied" notice is checked through the pipeline in
tests/consultation/test_approval_guard.py.)"""

from __future__ import annotations

from sqlmodel import select

from mailbot.models import OutboundMessage, Reviewer
from tests.web.conftest import seed_consultation, sign_in


def _notices(db) -> list[OutboundMessage]:
    with db.read() as session:
        return session.exec(select(OutboundMessage).where(OutboundMessage.kind == "notice")).all()


def test_assigning_an_item_mails_the_assignee_without_the_question(client, db, admin, alice):
    cid = seed_consultation(db, subject="Coding question for patient John Smith",
                            text="Secret clinical detail about the knee.")
    token = sign_in(client, admin)
    assert client.post(f"/consultations/{cid}/reassign", data={"to_reviewer_id": alice.id,
                                                              "csrf_token": token}).status_code == 303
    [notice] = _notices(db)
    assert notice.to_addr == alice.email and notice.consultation_id is None
    assert notice.subject == f"[Q-{cid}] assigned to you"
    raw = notice.raw.decode()
    assert f"/consultations/{cid}" in raw and "by Ada Admin" in raw
    assert "John Smith" not in raw and "Secret clinical detail" not in raw
    assert "Auto-Submitted: auto-replied" in raw or "Auto-Submitted: auto-generated" in raw


def test_no_notice_when_the_reviewer_opted_out(client, db, admin, alice):
    cid = seed_consultation(db)
    token = sign_in(client, alice)
    assert 'id="notify"' in client.get("/account").text
    assert client.post("/account/notifications", data={"csrf_token": token}).status_code == 303   # unticked
    with db.read() as session:
        assert session.get(Reviewer, alice.id).notify_by_mail is False
    token = sign_in(client, admin)
    client.post(f"/consultations/{cid}/reassign", data={"to_reviewer_id": alice.id, "csrf_token": token})
    assert _notices(db) == []
    token = sign_in(client, alice)
    client.post("/account/notifications", data={"notify": "1", "csrf_token": token})
    with db.read() as session:
        assert session.get(Reviewer, alice.id).notify_by_mail is True


def test_an_admin_assigning_to_themselves_gets_no_notice(client, db, admin):
    cid = seed_consultation(db)
    token = sign_in(client, admin)
    client.post(f"/consultations/{cid}/reassign", data={"to_reviewer_id": admin.id, "csrf_token": token})
    assert _notices(db) == []
