"""Job board pages: the public subscriber pages reached by signed links
(confirm, manage, RFC 8058 one-click unsubscribe) and the admin job pages."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from mailbot.context import Context, configure
from mailbot.jobs import links, subscriptions
from mailbot.jobs.criteria import parse_request
from mailbot.models.jobs import Job, JobStatus, Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
from reviewers.app import create_app
from tests.conftest import make_settings
from tests.jobs.support import active_subscription, add_job
from tests.web.conftest import SECRET, add_reviewer, csrf_from, sign_in


@pytest.fixture
def web_ctx(tmp_path, db) -> Context:
    return configure(Context(make_settings(tmp_path, db, **{"web.session_secret": SECRET}), db=db))


@pytest.fixture
def client(web_ctx):
    with TestClient(create_app(web_ctx), base_url="http://testserver", follow_redirects=False) as c:
        yield c


def path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_the_confirm_link_shows_a_button_and_the_post_confirms(client, web_ctx, db):
    with db.session() as s:
        sub = subscriptions.subscribe(s, "casey@example.org", parse_request("JOBS remote CPC daily"))
    url = path(links.confirm_url(web_ctx.settings, sub.id, sub.confirm_token))
    page = client.get(url)
    assert page.status_code == 200 and "remote jobs for CPC, daily" in page.text
    with db.read() as s:
        assert s.get(Subscription, sub.id).status == SubscriptionStatus.PENDING     # a GET changes nothing
    assert client.post(url, data={}).status_code == 403                              # CSRF required
    done = client.post(url, data={"csrf_token": csrf_from(page.text)})
    assert done.status_code == 303 and "/subscribe/manage/" in done.headers["location"]
    with db.read() as s:
        confirmed = s.get(Subscription, sub.id)
        assert confirmed.status == SubscriptionStatus.ACTIVE and confirmed.next_due_at is not None
    assert "your subscription is confirmed" in client.get(done.headers["location"]).text


def test_forged_and_expired_links_are_refused(client, web_ctx, db, monkeypatch):
    assert client.get("/subscribe/manage/not-a-token").status_code == 400
    token = links.sign(web_ctx.settings, "manage", {"p": 1})
    assert client.get(f"/unsubscribe/{token}").status_code == 400                   # wrong purpose
    import itsdangerous.timed

    later = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: later(self) + 31 * 24 * 3600)
    expired = client.get(f"/subscribe/manage/{token}")
    assert expired.status_code == 410 and "Send LIST" in expired.text


def test_one_click_unsubscribe_post_works_without_a_session_and_answers_200(client, web_ctx, db):
    with db.session() as s:
        sub = active_subscription(s, web_ctx.settings, "casey@example.org", "JOBS remote daily")
        other = active_subscription(s, web_ctx.settings, "casey@example.org", "UPDATES E08-E13")
    url = path(links.unsubscribe_url(web_ctx.settings, sub.subscriber_id, sub.id))
    page = client.get(url)
    assert page.status_code == 200 and "remote jobs, daily" in page.text
    # What a mail client sends for List-Unsubscribe-Post (no cookie, no CSRF token).
    fresh = TestClient(client.app, base_url="http://testserver")
    answer = fresh.post(url, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200 and "That digest is cancelled" in answer.text
    with db.read() as s:
        assert s.get(Subscription, sub.id).status == SubscriptionStatus.CANCELLED
        assert s.get(Subscription, other.id).status == SubscriptionStatus.ACTIVE
    everything = path(links.unsubscribe_url(web_ctx.settings, sub.subscriber_id))
    assert fresh.post(everything, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with db.read() as s:
        assert s.get(Subscription, other.id).status == SubscriptionStatus.CANCELLED
        assert s.get(Subscriber, sub.subscriber_id).status == SubscriberStatus.UNSUBSCRIBED


def test_the_one_click_link_of_a_job_digest_stops_every_job_digest_but_not_code_updates(client, web_ctx, db):
    with db.session() as s:
        daily = active_subscription(s, web_ctx.settings, "casey@example.org", "JOBS remote daily")
        weekly = active_subscription(s, web_ctx.settings, "casey@example.org", "JOBS hybrid CPC weekly")
        updates = active_subscription(s, web_ctx.settings, "casey@example.org", "UPDATES E08-E13")
    url = path(links.unsubscribe_url(web_ctx.settings, daily.subscriber_id, kind="jobs"))
    assert "Stop every job digest" in client.get(url).text
    fresh = TestClient(client.app, base_url="http://testserver")
    answer = fresh.post(url, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200 and "You are unsubscribed from job digests" in answer.text
    with db.read() as s:
        assert s.get(Subscription, daily.id).status == SubscriptionStatus.CANCELLED
        assert s.get(Subscription, weekly.id).status == SubscriptionStatus.CANCELLED
        assert s.get(Subscription, updates.id).status == SubscriptionStatus.ACTIVE
        assert s.get(Subscriber, daily.subscriber_id).status == SubscriberStatus.ACTIVE
    assert fresh.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200     # a second click: fine


def test_the_manage_page_pauses_resumes_and_changes_a_subscription(client, web_ctx, db):
    with db.session() as s:
        sub = active_subscription(s, web_ctx.settings, "casey@example.org", "JOBS remote CPC weekly")
    url = path(links.manage_url(web_ctx.settings, sub.subscriber_id))
    page = client.get(url)
    assert page.status_code == 200 and "remote jobs for CPC, weekly" in page.text
    token = csrf_from(page.text)
    assert client.post(url, data={"action": "pause", "subscription_id": sub.id}).status_code == 403
    assert client.post(url, data={"action": "pause", "subscription_id": sub.id, "csrf_token": token}).status_code == 303
    with db.read() as s:
        assert s.get(Subscription, sub.id).status == SubscriptionStatus.PAUSED
    client.post(url, data={"action": "resume", "subscription_id": sub.id, "csrf_token": token})
    changed = client.post(url, data={"action": "change", "subscription_id": sub.id, "csrf_token": token,
                                     "request_text": "hybrid CCS in Ohio", "frequency": "daily"})
    assert changed.status_code == 303
    with db.read() as s:
        now = s.get(Subscription, sub.id)
        assert now.status == SubscriptionStatus.ACTIVE and now.frequency == "daily"
        assert now.criteria["work_modes"] == ["hybrid"] and now.criteria["states"] == ["OH"]
        assert now.summary == "hybrid jobs for CCS located in Ohio, daily"
    assert "Saved" in client.get(changed.headers["location"]).text


def test_admin_pages_create_approve_and_expire_postings(client, web_ctx, db):
    reviewer = add_reviewer(db, "rev@coders.example")
    sign_in(client, reviewer)
    assert client.get("/admin/jobs").status_code == 403                               # admins only
    admin = add_reviewer(db, "admin@coders.example", role="admin")
    token = sign_in(client, admin)
    with db.session() as s:
        pending = add_job(s, "Emailed Posting")
        pending.status = JobStatus.PENDING
        s.add(pending)
    listing = client.get("/admin/jobs")
    assert listing.status_code == 200 and "Emailed Posting" in listing.text
    created = client.post("/admin/jobs/new", data={
        "csrf_token": token, "title": "Remote Coder", "employer": "Lone Star Health", "state": "TX",
        "work_mode": "remote", "credentials": "CPC, CCS", "apply_url": "https://lonestar.example/1"})
    assert created.status_code == 303 and created.headers["location"].endswith("?done=created")
    missing = client.post("/admin/jobs/new", data={"csrf_token": token, "title": "No employer"})
    assert missing.status_code == 400 and "needs a title and an employer" in missing.text
    assert client.post(f"/admin/jobs/{pending.id}/approve", data={"csrf_token": token}).status_code == 303
    with db.read() as s:
        remote = s.exec(select(Job).where(Job.title == "Remote Coder")).one()
        assert remote.credentials == ["CPC", "CCS"] and remote.status == JobStatus.OPEN
        approved = s.get(Job, pending.id)
        assert approved.status == JobStatus.OPEN and approved.opened_at is not None
    edit = client.post(f"/admin/jobs/{remote.id}", data={
        "csrf_token": token, "title": "Remote Coder II", "employer": "Lone Star Health", "work_mode": "remote",
        "apply_url": "https://lonestar.example/1"})
    assert edit.status_code == 303
    assert client.post(f"/admin/jobs/{remote.id}/expire", data={"csrf_token": token}).status_code == 303
    with db.read() as s:
        job = s.get(Job, remote.id)
        assert (job.title, job.status) == ("Remote Coder II", JobStatus.EXPIRED)
