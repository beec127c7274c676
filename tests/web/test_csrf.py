"""CSRF: every form post needs the session's token."""

from __future__ import annotations

from reviewers.app import api_routes
from reviewers.auth import access_of
from tests.web.conftest import seed_consultation, sign_in


def _concrete(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_post_route_refuses_a_logged_in_post_without_token(app, client, db, admin):
    seed_consultation(db)
    sign_in(client, admin)
    posts = [r for r in api_routes(app) if "POST" in r.methods and (access_of(r.endpoint) is None
                                                                     or access_of(r.endpoint).csrf)]
    assert len(posts) >= 10
    for route in posts:
        response = client.post(_concrete(route.path), data={"body": "x", "version": "1", "to_reviewer_id": "1"})
        assert response.status_code == 403, route.path
        assert "form has expired" in response.text


def test_wrong_token_is_refused_and_right_token_accepted(client, db, alice):
    cid = seed_consultation(db)
    token = sign_in(client, alice)
    assert client.post(f"/consultations/{cid}/claim", data={"csrf_token": token + "x"}).status_code == 403
    assert client.post(f"/consultations/{cid}/claim", headers={"X-CSRF-Token": "nope"}).status_code == 403
    response = client.post(f"/consultations/{cid}/claim", data={"csrf_token": token})
    assert response.status_code == 303


def test_token_in_header_is_accepted_for_scripts(client, db, alice):
    cid = seed_consultation(db)
    token = sign_in(client, alice)
    assert client.post(f"/consultations/{cid}/claim", headers={"X-CSRF-Token": token}).status_code == 303


def test_login_form_itself_needs_a_token(client, alice):
    from tests.web.conftest import PASSWORD

    response = client.post("/login", data={"email": alice.email, "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/queue").status_code == 303


def test_token_changes_at_login(client, alice):
    from tests.web.conftest import csrf_from, login

    before = csrf_from(client.get("/login").text)
    login(client, alice.email)
    after = csrf_from(client.get("/queue").text)
    assert before != after
