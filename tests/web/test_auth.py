"""Login, sessions and the rule that every page needs a login."""

from __future__ import annotations

import re

import pytest

from reviewers.app import api_routes
from reviewers.auth import LoginLimiter, access_of
from reviewers.sessions import COOKIE_NAME
from tests.web.conftest import PASSWORD, add_reviewer, login, seed_consultation, sign_in

# Routes that are deliberately reachable without a session.
PUBLIC = {"/login", "/healthz", "/metrics"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_refuses_anonymous_visitors(app, client, db, alice):
    # Given data that must never leak: a consultation with a recognisable subject.
    seed_consultation(db, subject="SECRET-SUBJECT-123", text="SECRET-BODY-456")
    checked = 0
    for route in api_routes(app):
        public = access_of(route.endpoint) is not None
        for method in route.methods:
            response = client.request(method, _concrete(route.path))
            checked += 1
            assert "SECRET-" not in response.text, (method, route.path)
            if public:
                assert route.path in PUBLIC or route.path.startswith(("/subscribe", "/unsubscribe", "/s/")), route.path
                continue
            if method in ("GET", "HEAD"):
                assert response.status_code == 303, (method, route.path, response.status_code)
                assert response.headers["location"].startswith("/login?next=")
            else:
                assert response.status_code == 401, (method, route.path, response.status_code)
    assert checked >= 20


def test_routes_marked_public_are_only_the_expected_ones(app):
    public = {r.path for r in api_routes(app) if access_of(r.endpoint) is not None}
    assert PUBLIC <= public
    assert all(p in PUBLIC or p.startswith(("/subscribe", "/unsubscribe", "/s/")) for p in public), public


def test_reviewer_logs_in_and_reaches_the_page_they_asked_for(client, alice):
    assert client.get("/queue").headers["location"] == "/login?next=%2Fqueue"
    page = client.get("/login?next=%2Fqueue%3Fstate%3Dall")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"email": "ALICE@coders.example", "password": PASSWORD,
                                           "csrf_token": token, "next": "/queue?state=all"})
    assert response.status_code == 303
    assert response.headers["location"] == "/queue?state=all"
    assert client.get("/queue").status_code == 200


def test_session_cookie_is_httponly_and_samesite_and_not_secure_over_plain_http(client, alice):
    response = login(client, alice.email)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_over_https(app, alice):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver", follow_redirects=False) as secure_client:
        response = login(secure_client, alice.email)
    assert response.status_code == 303
    assert "; Secure" in response.headers["set-cookie"]


def test_wrong_password_and_unknown_email_get_the_same_answer(client, alice):
    wrong = login(client, alice.email, "not the password")
    unknown = login(client, "nobody@coders.example", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Email or password is not right" in wrong.text and "Email or password is not right" in unknown.text
    assert client.get("/queue").status_code == 303


def test_disabled_reviewer_cannot_log_in_and_loses_open_sessions(client, db):
    carol = add_reviewer(db, "carol@coders.example")
    sign_in(client, carol)
    assert client.get("/queue").status_code == 200
    from mailbot.services import accounts

    with db.session() as session:
        accounts.disable(session, carol.email)
    assert client.get("/queue").status_code == 303
    assert login(client, carol.email).status_code == 401


def test_logout_ends_the_session(client, alice):
    token = sign_in(client, alice)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get("/queue").status_code == 303


def test_tampered_cookie_is_ignored(client, alice):
    sign_in(client, alice)
    value = client.cookies.get(COOKIE_NAME)
    client.cookies.set(COOKIE_NAME, value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"))
    assert client.get("/queue").status_code == 303


def test_login_does_not_redirect_off_site(client, alice):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.post("/login", data={"email": alice.email, "password": PASSWORD, "csrf_token": token,
                                               "next": target})
        assert response.headers["location"] == "/queue", target
        client.cookies.clear()
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def test_login_is_rate_limited_per_address_and_email(web_ctx, client, alice):
    limit = web_ctx.settings.web.login_attempts_per_minute
    for _ in range(limit):
        assert login(client, alice.email, "wrong password!").status_code == 401
    blocked = login(client, alice.email, PASSWORD)   # even the right password waits
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.text
    assert login(client, "other@coders.example", "wrong password!").status_code == 401


def test_limiter_window_slides():
    limiter = LoginLimiter(per_minute=2)
    assert limiter.allow("1.2.3.4", "a@x", now=0) and limiter.allow("1.2.3.4", "a@x", now=1)
    assert not limiter.allow("1.2.3.4", "a@x", now=30)
    assert limiter.retry_after("1.2.3.4", "a@x", now=30) == 31
    assert limiter.allow("1.2.3.4", "a@x", now=61)
    assert limiter.allow("5.6.7.8", "a@x", now=30)


def test_reviewer_is_refused_admin_pages(app, client, alice):
    sign_in(client, alice)
    admin_paths = [r.path for r in api_routes(app) if r.path.startswith("/admin") and "GET" in r.methods]
    assert admin_paths
    for path in admin_paths:
        assert client.get(_concrete(path)).status_code == 403, path


@pytest.mark.parametrize("path", ["/healthz"])
def test_health_is_public_and_says_little(client, path):
    response = client.get(path)
    assert response.status_code == 200
    # the parts this process runs and whether each works (issue 17), nothing more
    assert response.json() == {"status": "ok", "parts": {"database": "ok"}}


def test_pages_carry_security_headers(client, alice):
    sign_in(client, alice)
    headers = client.get("/queue").headers
    assert "img-src 'self' data:" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"


def test_expired_session_hands_back_the_typed_draft(client, db, alice):
    cid = seed_consultation(db, claimed_by=alice.id)
    response = client.post(f"/consultations/{cid}/save",
                           data={"body": "Two hours of careful <edits>", "version": "1", "csrf_token": "x"})
    assert response.status_code == 401
    assert "Your session has ended" in response.text
    assert "Two hours of careful &lt;edits&gt;" in response.text


def test_navigation_links_only_to_pages_that_exist(app, client, admin):
    from reviewers.app import api_routes

    sign_in(client, admin)
    page = client.get("/queue").text
    nav = page[page.index("<nav>"):page.index("</nav>")]
    paths = {r.path for r in api_routes(app)}
    for href in re.findall(r'href="([^"?]+)', nav):
        assert href in paths, href


def test_scripts_asking_for_json_get_401_not_a_redirect(client, db):
    response = client.get("/queue", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert client.head("/healthz").status_code == 200
