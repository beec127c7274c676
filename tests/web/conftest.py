"""Fixtures for the reviewer web app: an app on the test database, accounts,
seeded consultations, and clients that are logged in.

Logging in through the form costs an Argon2 verification (~0.1 s); tests
that are not about login use :func:`sign_in`, which writes the same signed
session cookie the login route would.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer

from mailbot.context import Context
from mailbot.models import (
    Attachment,
    Consultation,
    ConsultationState,
    Draft,
    InboundMessage,
    InboundStatus,
    Reviewer,
    utcnow,
)
from mailbot.services import accounts
from reviewers.app import create_app
from reviewers import sessions
from reviewers.sessions import COOKIE_NAME
from tests.conftest import make_settings

PASSWORD = "correct horse battery"
SECRET = "test-session-secret-" + "x" * 40


@lru_cache(maxsize=1)
def password_hash() -> str:
    return accounts.hasher().hash(PASSWORD)


@pytest.fixture
def web_ctx(tmp_path, db) -> Context:
    from mailbot.context import configure

    settings = make_settings(tmp_path, db, **{"web.session_secret": SECRET})
    return configure(Context(settings, db=db))


@pytest.fixture
def app(web_ctx):
    return create_app(web_ctx)


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


def add_reviewer(db, email: str, name: str = "", role: str = "reviewer", active: bool = True) -> Reviewer:
    with db.session() as session:
        reviewer = Reviewer(email=email, name=name or email.split("@")[0].title(), credential="CPC", role=role,
                            password_hash=password_hash(), active=active)
        session.add(reviewer)
        session.flush()
        return reviewer


@pytest.fixture
def alice(db) -> Reviewer:
    return add_reviewer(db, "alice@coders.example", "Alice Moreau")


@pytest.fixture
def bob(db) -> Reviewer:
    return add_reviewer(db, "bob@coders.example", "Bob Okafor")


@pytest.fixture
def admin(db) -> Reviewer:
    return add_reviewer(db, "admin@coders.example", "Ada Admin", role="admin")


def sign_in(client: TestClient, reviewer: Reviewer) -> str:
    """Give ``client`` a session for ``reviewer``; returns its CSRF token."""
    token = f"csrf-{reviewer.id}-" + "t" * 24
    sid = sessions.start(client.app.state.ctx.db, reviewer.id)   # the server-side record a login writes
    value = URLSafeTimedSerializer(SECRET, salt="mailbot.session").dumps(
        {"rid": reviewer.id, "sid": sid, "csrf": token})
    client.cookies.set(COOKIE_NAME, value)
    return token


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_from(page.text)})


def seed_consultation(db, *, subject: str = "Can 20610 and 99213 be billed together?",
                      text: str = "Patient seen for knee pain, injection given. Can we bill 20610 with 99213-25?",
                      html: str = "", state: str = ConsultationState.AWAITING_REVIEW, age_hours: float = 2,
                      draft: str | None = "Yes, with modifier 25 on 99213 when the E/M is significant and separate.",
                      cited: list[dict] | None = None, claimed_by: int | None = None, flags: int = 0,
                      systems: list[str] | None = None, asker: str = "coder@clinic.example",
                      attachment: tuple[str, str, bytes] | None = None) -> int:
    now = utcnow()
    with db.session() as session:
        c = Consultation(subject=subject, asker_email=asker, asker_name="Casey Coder", state=state,
                         created_at=now - timedelta(hours=age_hours), waiting_since=now - timedelta(hours=age_hours),
                         code_systems=systems if systems is not None else ["cpt"], flags=flags,
                         claimed_by_id=claimed_by, claimed_at=now if claimed_by else None,
                         root_message_id="<q1@clinic.example>", thread_message_ids=["<q1@clinic.example>"])
        session.add(c)
        session.flush()
        inbound = InboundMessage(source="smtp", envelope_from=asker, envelope_to=["ask@mailbot.localhost"],
                                 raw=b"Subject: x\r\n\r\nx", raw_sha256=f"{c.id:064d}", message_id="<q1@clinic.example>",
                                 from_addr=asker, from_name="Casey Coder", subject=subject, text=text, full_text=text,
                                 html=html, codes=["20610", "99213"], status=InboundStatus.PROCESSED,
                                 action="consult", consultation_id=c.id, received_at=now - timedelta(hours=age_hours))
        session.add(inbound)
        session.flush()
        c.last_inbound_id = inbound.id
        if attachment:
            name, ctype, data = attachment
            session.add(Attachment(inbound_id=inbound.id, filename=name, content_type=ctype, size=len(data), data=data))
        if draft is not None:
            session.add(Draft(consultation_id=c.id, source="llm", body=draft, model="test-model",
                              cited_codes=cited if cited is not None else [
                                  {"code": "20610", "system": "cpt", "role": "procedure", "status": "unlicensed_descriptor", "ok": True},
                                  {"code": "99213", "system": "cpt", "role": "procedure", "status": "unlicensed_descriptor", "ok": True}],
                              redacted_question="Patient [NAME] seen for knee pain. Can we bill 20610 with 99213-25?",
                              redactions=[{"kind": "name", "start": 8, "end": 14}]))
        session.add(c)
        return c.id
