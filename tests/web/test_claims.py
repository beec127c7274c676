"""Claims: one reviewer per consultation, a clear message for the second."""

from __future__ import annotations

import threading

import pytest

from mailbot.models import AuditEvent, Consultation, ConsultationState
from mailbot.services import claims
from tests.web.conftest import add_reviewer, seed_consultation, sign_in


def test_claim_from_the_detail_page(client, db, alice):
    cid = seed_consultation(db)
    token = sign_in(client, alice)
    response = client.post(f"/consultations/{cid}/claim", data={"csrf_token": token})
    assert response.headers["location"] == f"/consultations/{cid}?done=claimed"
    page = client.get(response.headers["location"]).text
    assert "Claimed by you" in page and "You have claimed this consultation." in page
    with db.read() as session:
        assert session.get(Consultation, cid).claimed_by_id == alice.id


def test_second_reviewer_is_told_who_holds_it_and_cannot_edit(app, db, alice, bob):
    from fastapi.testclient import TestClient

    cid = seed_consultation(db, claimed_by=alice.id)
    with TestClient(app, follow_redirects=False) as other:
        token = sign_in(other, bob)
        page = other.get(f"/consultations/{cid}").text
        assert "Claimed by Alice Moreau" in page
        assert 'id="approve"' not in page and "readonly" in page
        refused = other.post(f"/consultations/{cid}/claim", data={"csrf_token": token})
        assert refused.status_code == 409
        assert "already claimed by Alice Moreau" in refused.text
        edit = other.post(f"/consultations/{cid}/save", data={"csrf_token": token, "body": "bob's text",
                                                              "version": "1"})
        assert edit.status_code == 409
        assert "only they can change it" in edit.text
        assert "bob&#39;s text" in edit.text  # the text typed is not lost
    with db.read() as session:
        assert session.get(Consultation, cid).claimed_by_id == alice.id


def test_simultaneous_claims_have_exactly_one_winner(web_ctx, db):
    cid = seed_consultation(db)
    people = [add_reviewer(db, f"r{i}@coders.example") for i in range(6)]
    results: list[str] = []
    barrier = threading.Barrier(len(people))

    def attempt(reviewer_id: int) -> None:
        barrier.wait()
        try:
            claims.claim(web_ctx, cid, reviewer_id)
            results.append("won")
        except claims.ClaimConflict:
            results.append("lost")

    threads = [threading.Thread(target=attempt, args=(p.id,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["lost"] * 5 + ["won"]


def test_claim_again_is_harmless_and_finished_items_cannot_be_claimed(web_ctx, db, alice):
    cid = seed_consultation(db)
    claims.claim(web_ctx, cid, alice.id)
    claims.claim(web_ctx, cid, alice.id)
    done = seed_consultation(db, state=ConsultationState.SENT)
    with pytest.raises(claims.ClaimError, match="sent and cannot be claimed"):
        claims.claim(web_ctx, done, alice.id)


def test_unclaim_by_holder_or_admin_only(web_ctx, db, alice, bob, admin):
    cid = seed_consultation(db, claimed_by=alice.id)
    with pytest.raises(claims.ClaimConflict):
        claims.unclaim(web_ctx, cid, bob.id)
    claims.unclaim(web_ctx, cid, admin.id)
    claims.claim(web_ctx, cid, bob.id)
    claims.unclaim(web_ctx, cid, bob.id)
    with db.read() as session:
        assert session.get(Consultation, cid).claimed_by_id is None
        actions = [e.action for e in session.exec(
            AuditEvent.__table__.select().where(AuditEvent.consultation_id == cid).order_by(AuditEvent.id))]
    assert actions == ["unclaim", "claim", "unclaim"]


def test_admin_reassigns_from_the_page_and_reviewers_cannot(app, client, db, alice, bob, admin):
    cid = seed_consultation(db, claimed_by=alice.id)
    token = sign_in(client, alice)
    assert client.post(f"/consultations/{cid}/reassign",
                       data={"csrf_token": token, "to_reviewer_id": str(bob.id)}).status_code == 403
    token = sign_in(client, admin)
    response = client.post(f"/consultations/{cid}/reassign", data={"csrf_token": token, "to_reviewer_id": str(bob.id)})
    assert response.status_code == 303
    with db.read() as session:
        assert session.get(Consultation, cid).claimed_by_id == bob.id
    audit = client.get(f"/consultations/{cid}/audit").text
    assert "reassign" in audit and "Bob Okafor" in audit


def test_take_next_claims_the_oldest_unclaimed_item(client, db, alice, bob):
    seed_consultation(db, subject="oldest but claimed", age_hours=50, claimed_by=bob.id)
    oldest_free = seed_consultation(db, subject="oldest free", age_hours=30)
    seed_consultation(db, subject="newer", age_hours=1)
    token = sign_in(client, alice)
    response = client.post("/queue/next", data={"csrf_token": token})
    assert response.headers["location"] == f"/consultations/{oldest_free}?done=claimed"
    with db.read() as session:
        assert session.get(Consultation, oldest_free).claimed_by_id == alice.id


def test_take_next_when_nothing_is_waiting(client, db, alice):
    token = sign_in(client, alice)
    response = client.post("/queue/next", data={"csrf_token": token})
    assert response.headers["location"] == "/queue?done=queue_empty"
    assert "Nothing unclaimed is waiting" in client.get(response.headers["location"]).text


def test_reviewers_taking_next_together_get_different_items(web_ctx, db):
    ids = {seed_consultation(db, age_hours=10 - i) for i in range(4)}
    people = [add_reviewer(db, f"n{i}@coders.example") for i in range(4)]
    got: list[int | None] = []
    barrier = threading.Barrier(len(people))

    def take(reviewer_id: int) -> None:
        barrier.wait()
        got.append(claims.claim_next(web_ctx, reviewer_id))

    threads = [threading.Thread(target=take, args=(p.id,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == sorted(ids)
