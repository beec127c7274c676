"""Every web route, enumerated from the app (routers other parts added
included), without a session and without a CSRF token.

- No session -- none at all, a forged cookie, one signed with another
  secret, one naming a disabled reviewer -- and path variants (case,
  trailing slash, double slash, dot segments): only routes explicitly marked
  public answer, and none of them shows data.
- Every unsafe request of a logged-in admin without a valid token (none, a
  wrong one, another session's, one in the query string only) is refused
  with 403 and changes nothing; the one route exempt from CSRF is the RFC
  8058 one-click unsubscribe, whose signed link is the authority.

``tests/web/test_auth.py`` and ``tests/web/test_csrf.py`` hold the basic
checks; this adds the disguises and counts what was tried.
"""

from __future__ import annotations

import re

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select as sa_select
from sqlmodel import SQLModel

from reviewers.app import api_routes
from reviewers.auth import access_of
from reviewers.csrf import SAFE_METHODS
from reviewers.sessions import COOKIE_NAME
from tests.hostile import tally
from tests.web.conftest import SECRET, add_reviewer, admin, app, client, seed_consultation, sign_in, web_ctx  # noqa: F401

SECRET_TEXT = "HOSTILE-SECRET-7731"
PUBLIC_PREFIXES = ("/login", "/healthz", "/metrics", "/subscribe/", "/unsubscribe/")


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _counts(db) -> dict[str, int]:
    with db.read() as session:
        return {t.name: session.execute(sa_select(func.count()).select_from(t)).scalar_one()
                for t in SQLModel.metadata.sorted_tables}


def _cookie(secret: str, payload: dict) -> str:
    return URLSafeTimedSerializer(secret, salt="mailbot.session").dumps(payload)


def test_no_route_answers_without_a_real_session_except_the_public_ones(app, client, db):
    cid = seed_consultation(db, subject=SECRET_TEXT, text=SECRET_TEXT)
    disabled = add_reviewer(db, "gone@coders.example", active=False)
    cookies = {
        "none": None, "forged": "not-a-session", "other secret": _cookie("x" * 48, {"rid": 1, "csrf": "t"}),
        "disabled reviewer": _cookie(SECRET, {"rid": disabled.id, "csrf": "t"}),
        "unknown reviewer": _cookie(SECRET, {"rid": 999_999, "csrf": "t"}),
    }
    routes = api_routes(app)
    assert len(routes) >= 30
    tried = 0
    for label, cookie in cookies.items():
        client.cookies.clear()
        if cookie:
            client.cookies.set(COOKIE_NAME, cookie)
        for route in routes:
            public = access_of(route.endpoint) is not None
            path = _concrete(route.path).replace("/1", f"/{cid}", 1)
            variants = [path] if label != "none" else [path, path.upper(), path + "/", "/" + path, "/static/.." + path]
            for method in sorted(route.methods):
                for url in variants:
                    response = client.request(method, url)
                    tried += 1
                    assert SECRET_TEXT not in response.text, (label, method, url)
                    assert response.status_code != 500, (label, method, url)
                    if public:
                        assert route.path.startswith(PUBLIC_PREFIXES), route.path
                    elif url == path:
                        expected = 303 if method in ("GET", "HEAD") else 401
                        assert response.status_code == expected, (label, method, url, response.status_code)
                        if expected == 303:
                            assert response.headers["location"].startswith("/login?next=")
                    else:
                        assert response.status_code in (303, 307, 401, 404, 405), (label, method, url,
                                                                                    response.status_code)
    tally.count("web.routes", len(routes))
    tally.count("web.anonymous_requests", tried)


def test_every_unsafe_request_without_a_valid_token_is_refused_and_changes_nothing(app, client, db, admin):
    cid = seed_consultation(db)
    other = add_reviewer(db, "other@coders.example")
    unsafe = [(route, method) for route in api_routes(app) for method in route.methods if method not in SAFE_METHODS]
    exempt = [route.path for route, _ in unsafe if access_of(route.endpoint) and not access_of(route.endpoint).csrf]
    assert exempt == ["/unsubscribe/{token}"]                  # RFC 8058 one-click: the signed link is the authority
    checked = [(route, method) for route, method in unsafe if route.path not in exempt]
    assert len(checked) >= 15
    other_token = sign_in(client, other)
    token = sign_in(client, admin)
    assert token != other_token
    before = _counts(db)
    tried = 0
    form = {"body": "x", "version": "1", "to_reviewer_id": str(admin.id), "email": "a@b.example", "password": "x",
            "action": "pause", "title": "T", "employer": "E", "reason": "r", "question": "q"}
    for route, method in checked:
        url = _concrete(route.path).replace("/1", f"/{cid}", 1)
        attempts = [
            dict(data=form),                                              # no token
            dict(data={**form, "csrf_token": token[:-1] + "x"}),          # a wrong one
            dict(data={**form, "csrf_token": other_token}),               # another session's
            dict(data=form, params={"csrf_token": token}),                # in the query string only
            dict(headers={"X-CSRF-Token": other_token}),                  # another session's, as a header
            dict(content=f"csrf_token={token}", headers={"Content-Type": "text/plain"}),  # not a form
        ]
        for attempt in attempts:
            response = client.request(method, url, **attempt)
            tried += 1
            assert response.status_code == 403, (method, url, attempt, response.status_code)
    assert _counts(db) == before
    # Without any session, the public forms are refused the same way.
    client.cookies.clear()
    for route, method in checked:
        if access_of(route.endpoint) is not None:
            assert client.request(method, _concrete(route.path), data=form).status_code == 403, route.path
            tried += 1
    tally.count("web.unsafe_routes", len(checked))
    tally.count("web.csrf_refused", tried)
