"""Admin pages: metrics, quarantine replay, outbox, code sets, accounts, /metrics."""

from __future__ import annotations

from datetime import timedelta

from mailbot.mail.compose import Envelope, Rendered, build
from mailbot.models import Consultation, ConsultationState, OutboundMessage, OutboundState, QuarantineItem
from mailbot.services import accounts
from mailbot.services.delivery import queue_message
from mailbot.services.quarantine import quarantine
from tests.web.conftest import PASSWORD, login, seed_consultation, sign_in


def _outbound(db, *, state: str = OutboundState.FAILED, subject: str = "Re: question") -> int:
    message = build(Rendered(subject=subject, text="Answer text", html=None),
                    Envelope(to="coder@clinic.example", from_addr="ask@mailbot.localhost"),
                    domain="mailbot.localhost", kind="answer")
    with db.session() as session:
        row = queue_message(session, message, kind="answer")
        row.state, row.attempts, row.last_error = state, 8, "relay answered 550 5.1.1 no such user"
        session.add(row)
        return row.id


def test_metrics_page_shows_pending_median_and_answers_per_reviewer(client, db, admin, alice):
    seed_consultation(db, age_hours=1)
    seed_consultation(db, age_hours=48)  # over the SLA
    sent = seed_consultation(db, state=ConsultationState.SENT, age_hours=5)
    with db.session() as session:
        c = session.get(Consultation, sent)
        c.answered_at, c.approved_by_id = c.created_at + timedelta(hours=3), alice.id
    sign_in(client, admin)
    page = client.get("/admin").text
    assert '<span class="n" id="m-pending">2</span>' in page
    assert "3.0" in page            # median hours to answer
    assert "Alice Moreau" in page   # answers per reviewer per day
    assert '<span class="n">1</span> over the 24 h SLA' in page


def test_quarantined_outbound_is_replayed(client, db, admin, web_ctx):
    oid = _outbound(db)
    with db.session() as session:
        qid = quarantine(session, kind="outbound", ref_id=oid, stage="delivery", reason="permanent delivery failure: 550").id
    token = sign_in(client, admin)
    page = client.get("/admin/quarantine").text
    assert "permanent delivery failure: 550" in page
    response = client.post(f"/admin/quarantine/{qid}/replay", data={"csrf_token": token})
    assert response.status_code == 303
    with db.read() as session:
        assert session.get(OutboundMessage, oid).state == OutboundState.PENDING
        item = session.get(QuarantineItem, qid)
        assert item.resolved_at is not None and item.resolved_by == admin.email
    again = client.post(f"/admin/quarantine/{qid}/replay", data={"csrf_token": token})
    assert again.status_code == 409 and "already resolved" in again.text


def test_quarantine_item_can_be_resolved_without_replay(client, db, admin):
    with db.session() as session:
        qid = quarantine(session, kind="advance_consultation", ref_id=None, reason="boom").id
    token = sign_in(client, admin)
    assert client.post(f"/admin/quarantine/{qid}/resolve", data={"csrf_token": token}).status_code == 303
    assert "boom" not in client.get("/admin/quarantine").text
    assert "boom" in client.get("/admin/quarantine?show=all").text


def test_outbox_lists_rows_failures_and_the_maildir(client, db, admin, web_ctx):
    failed = _outbound(db, subject="Failed one")
    _outbound(db, state=OutboundState.SENT, subject="Sent one")
    web_ctx.sender.send(b"To: x@clinic.example\r\nSubject: In the maildir\r\nX-Mailbot-Kind: help\r\n\r\nhi\r\n",
                        envelope_from="bounces@mailbot.localhost", recipients=["x@clinic.example"])
    token = sign_in(client, admin)
    page = client.get("/admin/outbox").text
    assert "Failed one" in page and "Sent one" in page and "In the maildir" in page
    failures = client.get("/admin/outbox?state=failed").text
    assert "Failed one" in failures and "Sent one" not in failures and "550 5.1.1" in failures
    assert "Answer text" in client.get(f"/admin/outbox/{failed}").text
    assert client.post(f"/admin/outbox/{failed}/retry", data={"csrf_token": token}).status_code == 303
    with db.read() as session:
        assert session.get(OutboundMessage, failed).state == OutboundState.PENDING


def test_code_set_page_renders(client, admin):
    sign_in(client, admin)
    response = client.get("/admin/codesets")
    assert response.status_code == 200 and "Code-set versions loaded" in response.text


def test_admin_adds_and_disables_reviewers(client, db, admin):
    token = sign_in(client, admin)
    bad = client.post("/admin/reviewers", data={"csrf_token": token, "email": "dan@coders.example", "name": "Dan",
                                                "role": "reviewer", "password": "short"})
    assert bad.status_code == 422 and "at least 10 characters" in bad.text
    ok = client.post("/admin/reviewers", data={"csrf_token": token, "email": "dan@coders.example", "name": "Dan",
                                               "credential": "CCS", "role": "reviewer", "password": PASSWORD})
    assert ok.status_code == 303
    with db.read() as session:
        dan = accounts.find(session, "dan@coders.example")
    assert client.post(f"/admin/reviewers/{dan.id}/disable", data={"csrf_token": token}).status_code == 303
    assert client.post(f"/admin/reviewers/{admin.id}/disable", data={"csrf_token": token}).status_code == 409
    client.cookies.clear()
    assert login(client, "dan@coders.example").status_code == 401


def test_prometheus_metrics_for_admins_and_listed_hosts_only(app, client, db, admin, alice, web_ctx):
    seed_consultation(db)
    assert client.get("/metrics").status_code == 403           # TestClient's address is not listed
    sign_in(client, alice)
    assert client.get("/metrics").status_code == 403           # reviewers are not admins
    sign_in(client, admin)
    body = client.get("/metrics").text
    assert 'mailbot_consultations{state="awaiting_review"} 1.0' in body
    assert "mailbot_web_request_seconds_bucket" in body
    client.cookies.clear()
    web_ctx.settings.web.metrics_hosts = ["testclient"]
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403


def test_code_set_versions_are_listed(client, codes_db, db, admin):
    sign_in(client, admin)
    page = client.get("/admin/codesets").text
    assert "ICD-10-CM" in page and "HCPCS Level II" in page and "FY2027" in page
    assert "No code sets are loaded" not in page
    # every ICD-10-CM year with its valid dates, and which release is in force today
    assert "FY2016" in page and "2015-10-01 – 2016-09-30" in page and "91,737" in page
    assert "in force" in page and "past" in page


def test_quarantined_inbound_is_replayed_through_the_inbound_service(client, db, admin):
    from mailbot.models import InboundMessage, InboundStatus
    from mailbot.services.inbound import QUARANTINE_KINDS

    with db.session() as session:
        row = InboundMessage(source="smtp", raw=b"Subject: x\r\n\r\nbody", raw_sha256="1" * 64,
                             status=InboundStatus.QUARANTINED, error="parse failed")
        session.add(row)
        session.flush()
        qid = quarantine(session, kind=sorted(QUARANTINE_KINDS)[0], ref_id=row.id, stage="route",
                         reason="could not parse").id
        inbound_id = row.id
    token = sign_in(client, admin)
    assert client.post(f"/admin/quarantine/{qid}/replay", data={"csrf_token": token}).status_code == 303
    with db.read() as session:
        assert session.get(InboundMessage, inbound_id).status == InboundStatus.RECEIVED
        assert session.get(QuarantineItem, qid).resolved_by == admin.email


def test_quarantined_actor_work_is_poked_again_and_unknown_kinds_are_refused(client, db, admin):
    cid = seed_consultation(db)
    with db.session() as session:
        known = quarantine(session, kind="advance_consultation", ref_id=cid, stage="queue", reason="gave up").id
        unknown = quarantine(session, kind="mystery", ref_id=1, stage="queue", reason="??").id
    token = sign_in(client, admin)
    assert client.post(f"/admin/quarantine/{known}/replay", data={"csrf_token": token}).status_code == 303
    refused = client.post(f"/admin/quarantine/{unknown}/replay", data={"csrf_token": token})
    assert refused.status_code == 409 and "cannot be replayed" in refused.text
    with db.read() as session:
        assert session.get(QuarantineItem, known).resolved_at is not None
        assert session.get(QuarantineItem, unknown).resolved_at is None
