"""XSS and SQL injection payloads through every input the reviewer web app
shows or searches, with a logged-in admin:

- shown: inbound mail on the detail page and the queue (subject, sender
  name, text, HTML part, attachment file name), job postings made through
  the admin form, a subscriber's own request text on the public manage page,
  a reviewer's name added through the admin form;
- searched or filtered: the queue's search box and every filter, the lookup
  and search page, the detail page's quick lookup, the admin list filters.

Every response is parsed as HTML and must be inert (``tests.hostile.inert``);
no request may end in a 500; SQL payloads must not change what a query
returns or any row count, and every table is still there afterwards.
``tests/web/test_xss.py`` checks the sanitizer payload by payload.
"""

from __future__ import annotations

import re

from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select as sa_select
from sqlmodel import SQLModel, select

from mailbot.jobs import links, subscriptions
from mailbot.jobs.criteria import parse_request
from mailbot.models import Attachment, Consultation, InboundMessage
from mailbot.models.jobs import Job, Subscription
from tests.hostile import tally
from tests.hostile.inert import problems
from tests.web.conftest import admin, app, client, csrf_from, seed_consultation, sign_in, web_ctx  # noqa: F401

XSS = [
    '<script>alert("x")</script>', "<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>',
    "'><iframe src=javascript:alert(1)>", '" autofocus onfocus="alert(1)', "javascript:alert(1)",
    "<a href=\"javascript:alert(1)\">x</a>", "<body onload=alert(1)>", "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "{{ 7*7 }}{% raw %}", "<meta http-equiv=refresh content='0;url=https://evil.example/'>",
    "<base href=https://evil.example/>", "<object data=data:text/html,<script>alert(1)</script>>",
    "&lt;script&gt;alert(1)&lt;/script&gt;", "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "\u003cscript\u003ealert(1)\u003c/script\u003e", "<div style=\"background:url(javascript:alert(1))\">x</div>",
]
SQL = [
    "' OR '1'='1", "' OR 1=1 --", "'; DROP TABLE consultation; --", "\" OR \"\"=\"", "1; DELETE FROM reviewer",
    "%' UNION SELECT password_hash FROM reviewer --", "') OR ('x'='x", "\\'; SELECT pg_sleep(5); --",
    "1' AND (SELECT COUNT(*) FROM sqlite_master) > 0 --", "%", "_", "\\", "%%'", "\x00", "99213' --",
]
PAYLOADS = XSS + SQL


def _counts(db) -> dict[str, int]:
    with db.read() as session:
        return {t.name: session.execute(sa_select(func.count()).select_from(t)).scalar_one()
                for t in SQLModel.metadata.sorted_tables}


def _check(response, where: str) -> None:
    assert response.status_code < 500, (where, response.status_code, response.text[:500])
    if response.headers.get("content-type", "").startswith("text/html"):
        found = problems(response.text)
        assert not found, (where, found)


def _hostile_consultations(db) -> list[int]:
    """One consultation per XSS payload, the payload in every field mail fills."""
    ids = []
    for n, payload in enumerate(XSS):
        cid = seed_consultation(db, subject=payload, text=f"Question {payload} 99213", html=f"<p>{payload}</p>",
                                asker=f"coder{n}@clinic.example", attachment=(payload[:200], "text/html", b"<b>x</b>"))
        with db.session() as session:
            consultation = session.get(Consultation, cid)
            consultation.asker_name = payload[:200]
            session.add(consultation)
            for row in session.exec(select(InboundMessage).where(InboundMessage.consultation_id == cid)).all():
                row.from_name = payload[:200]
                session.add(row)
        ids.append(cid)
    return ids


def test_payloads_in_mail_searches_and_filters_are_inert_and_change_no_data(client, db, admin, codes_db):
    ids = _hostile_consultations(db)
    sign_in(client, admin)
    before = _counts(db)
    requests = 0
    for cid in ids:
        _check(client.get(f"/consultations/{cid}"), f"detail {cid}")
        _check(client.get(f"/consultations/{cid}/audit"), f"audit {cid}")
        requests += 2
    for payload in PAYLOADS:
        urls = [f"/queue?{urlencode({'q': payload})}", f"/queue?{urlencode({'q': payload, 'state': 'all'})}"]
        urls += [f"/queue?{urlencode({name: payload})}" for name in ("state", "assignee", "system", "flagged", "page")]
        urls += [f"/lookup?{urlencode({'q': payload, 'mode': mode})}" for mode in ("auto", "lookup", "search", "check")]
        urls += [f"/lookup?{urlencode({'q': '99213', 'on': payload, 'setting': payload, 'mode': payload})}",
                 f"/consultations/{ids[0]}?{urlencode({'q': payload})}",
                 f"/admin/quarantine?{urlencode({'show': payload})}", f"/admin/outbox?{urlencode({'state': payload})}",
                 f"/admin/jobs?{urlencode({'status': payload})}", f"/login?{urlencode({'next': payload})}"]
        for url in urls:
            _check(client.get(url), url)
            requests += 1
    # A payload in the search box matches its own text, never everything.
    def listed(q: str) -> set[int]:
        page = client.get(f"/queue?{urlencode({'q': q, 'state': 'all'})}").text
        return {cid for cid in ids if f'href="/consultations/{cid}"' in page}

    assert listed("coder3@") == {ids[3]}
    for payload in SQL:
        # Wildcards are literal: only a subject, name or address that contains the text itself.
        # A search of nothing but control characters is no search (a NUL used to match every row on SQLite).
        text = "".join(ch for ch in payload if ch >= " ").strip().lower()
        literal = {cid for n, cid in enumerate(ids) if text in (XSS[n] + f" coder{n}@clinic.example").lower()}
        # Full-text search (issue 15) also finds a consultation whose question holds every word of the
        # search as a word ("99213' --" finds the questions that cite 99213) -- words, never operators.
        words = re.findall(r"\w+", text)
        by_words = {cid for n, cid in enumerate(ids)
                    if words and all(re.search(rf"\b{re.escape(w)}\b", f"Question {XSS[n]} 99213".lower()) for w in words)}
        found = listed(payload)
        assert literal <= found <= literal | by_words, payload
    assert _counts(db) == before
    tally.count("web.payloads", len(PAYLOADS))
    tally.count("web.injection_requests", requests)


def test_payloads_through_admin_and_subscriber_forms_are_stored_as_text_and_shown_inert(client, db, admin, web_ctx):
    token = sign_in(client, admin)
    with db.session() as session:
        sub = subscriptions.subscribe(session, "casey@example.org", parse_request("JOBS remote CPC daily"))
        subscriptions.confirm(session, web_ctx.settings, sub.id, sub.confirm_token)
        subscriber_id = sub.subscriber_id
    manage = "/" + links.manage_url(web_ctx.settings, subscriber_id).split("/", 3)[3]
    before = _counts(db)
    posted = 0
    for n, payload in enumerate(PAYLOADS):
        fields = {name: payload for name in ("title", "employer", "city", "specialty", "experience", "description",
                                             "credentials")}
        fields.update({"apply_url": f"https://jobs.example/{n}", "work_mode": "remote", "csrf_token": token})
        response = client.post("/admin/jobs/new", data=fields)
        _check(response, f"job form {payload!r}")
        if response.status_code == 303:
            _check(client.get(response.headers["location"]), "job page")
        reviewer = client.post("/admin/reviewers", data={"email": f"r{n}@coders.example", "name": payload,
                                                          "credential": payload, "role": "reviewer",
                                                          "csrf_token": token})
        _check(reviewer, f"reviewer form {payload!r}")
        page = client.get(manage)
        changed = client.post(manage, data={"action": "change", "subscription_id": str(sub.id),
                                            "request_text": payload, "frequency": "weekly",
                                            "csrf_token": csrf_from(page.text)})
        assert changed.status_code == 303, changed.text[:300]
        _check(client.get(manage), "manage page")
        posted += 3
    for url in ("/admin/jobs?status=all", "/admin/reviewers", "/queue?state=all", manage):
        _check(client.get(url), url)
    after = _counts(db)
    with db.read() as session:
        jobs = session.exec(select(Job)).all()
        stored = session.get(Subscription, sub.id)
    # Payloads are data: stored verbatim where they were accepted, nothing else touched.
    assert stored.request == PAYLOADS[-1].replace("\x00", "")[:1000]
    assert any(j.title == XSS[0] for j in jobs)
    grew = {name for name in after if after[name] != before[name]}
    assert grew <= {"job", "reviewer", "audit_event"}, grew
    tally.count("web.form_posts", posted)


def test_a_nul_in_the_queue_search_is_no_search_rather_than_a_match_for_everything(client, db, admin):
    """Regression: SQLite cut the LIKE pattern at the NUL ("%\\x00%" became
    "%", every row matched) and PostgreSQL refused it with a 500."""
    mine = seed_consultation(db, subject="Knee injection")
    other = seed_consultation(db, subject="Shoulder", text="Shoulder pain, which code?")  # no "knee" in its text
    sign_in(client, admin)
    page = client.get(f"/queue?{urlencode({'q': 'knee' + chr(0), 'state': 'all'})}")
    assert page.status_code == 200
    assert f'href="/consultations/{mine}"' in page.text and f'href="/consultations/{other}"' not in page.text


def test_a_nul_in_job_admin_forms_filters_and_subscriber_requests_is_not_a_server_error(client, db, admin, web_ctx):
    """Regression: PostgreSQL refuses NUL in text; the job list filter, the
    job form and the subscriber's request text answered 500."""
    token = sign_in(client, admin)
    assert client.get("/admin/jobs?status=%00").status_code == 200
    created = client.post("/admin/jobs/new", data={"title": "Coder\x00", "employer": "Acme\x00", "work_mode": "remote",
                                                   "apply_url": "https://jobs.example/1", "csrf_token": token})
    assert created.status_code == 303
    with db.read() as session:
        assert [j.title for j in session.exec(select(Job)).all()] == ["Coder"]
    with db.session() as session:
        sub = subscriptions.subscribe(session, "kim@example.org", parse_request("JOBS remote daily"))
    manage = "/" + links.manage_url(web_ctx.settings, sub.subscriber_id).split("/", 3)[3]
    changed = client.post(manage, data={"action": "change", "subscription_id": str(sub.id), "request_text": "CPC\x00",
                                        "csrf_token": csrf_from(client.get(manage).text)})
    assert changed.status_code == 303
