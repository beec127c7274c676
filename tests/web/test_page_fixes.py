"""Small things a reviewer noticed (issue 15): the favicon is served, the
audit log speaks in words and shows both sides of a change."""

from __future__ import annotations

from mailbot.models import AuditEvent
from tests.web.conftest import seed_consultation, sign_in


def test_the_favicon_is_served_without_a_login(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"          # an ICO header


def test_the_audit_log_uses_labels_and_shows_before_and_after(client, db, alice):
    cid = seed_consultation(db, cited=[])
    with db.session() as session:
        session.add(AuditEvent(consultation_id=cid, actor="system", action="acknowledged",
                               detail={"ack_sent": True, "reason": ""}))
        session.add(AuditEvent(consultation_id=cid, actor="alice@coders.example", action="approved",
                               before="old short text", after="new short text", detail={"outbound_id": 24, "flags": 0}))
        session.add(AuditEvent(consultation_id=cid, actor="alice@coders.example", action="rejected",
                               before="awaiting_review", after="out of scope"))
    sign_in(client, alice)
    page = client.get(f"/consultations/{cid}/audit").text
    assert "ack_sent" not in page and "outbound_id" not in page and "True" not in page
    assert "<dt>acknowledgement sent</dt><dd>yes</dd>" in page
    assert "<dt>outgoing mail no.</dt><dd>24</dd>" in page
    assert '<pre class="del">old short text</pre>' in page and '<pre class="add">new short text</pre>' in page
    assert '<pre class="del">awaiting_review</pre>' in page and '<pre class="add">out of scope</pre>' in page
