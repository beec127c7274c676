"""Reading postings: CSV, JSON, RSS, Atom and schema.org JobPosting JSON-LD,
and merging duplicates on import."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from mailbot.jobs import board, feeds, importers
from mailbot.models.jobs import Job, JobStatus
from tests.conftest import DATA_DIR

JOBS = DATA_DIR / "jobs"


def test_csv_rows_become_postings_and_a_bad_row_is_reported_not_dropped_silently():
    inputs, problems = importers.read_file(str(JOBS / "jobs.csv"))
    assert [j.title for j in inputs] == ["Remote Outpatient Coder", "Inpatient Coder II", "Risk Adjustment Coder"]
    first, second, third = inputs
    assert (first.city, first.state, first.work_mode) == ("Austin", "TX", "remote")
    assert first.credentials == ["CPC", "CCS"]
    assert (first.salary_min, first.salary_max, first.salary_period) == (55000, 65000, "year")
    assert first.expires_at == datetime(2026, 12, 31, tzinfo=UTC)
    assert (second.state, second.work_mode, second.salary_min, second.salary_period) == ("TX", "onsite", 32, "hour")
    assert third.work_mode == "remote" and (third.salary_min, third.salary_max) == (60000, 70000)
    assert len(problems) == 1 and "record 4" in problems[0] and "title" in problems[0]


def test_json_accepts_aliases_and_an_apply_address():
    inputs, problems = importers.read_file(str(JOBS / "jobs.json"))
    assert problems == []
    lone, peach = inputs
    assert (lone.employer, lone.work_mode, lone.credentials) == ("Lone Star Health", "remote", ["CPC"])
    assert (peach.city, peach.state, peach.work_mode) == ("Atlanta", "GA", "hybrid")
    assert peach.credentials == ["COC", "CPC"] and peach.apply_email == "jobs@peachstate.example"


def test_rss_titles_give_employer_and_place():
    inputs, problems = feeds.read_feed_or_page(str(JOBS / "feed.rss"))
    assert problems == []
    ortho, cdi = inputs
    assert (ortho.title, ortho.employer, ortho.city, ortho.state) == ("Remote CPC Coder", "Sunbelt Orthopedics", "Phoenix", "AZ")
    assert ortho.work_mode == "remote" and ortho.credentials == ["CPC"] and ortho.specialty == "orthopedic"
    assert (ortho.salary_min, ortho.salary_period) == (25, "hour")
    assert ortho.posted_at == datetime(2026, 11, 23, 14, 0, tzinfo=UTC) and ortho.source_ref == "sunbelt-ortho-1"
    assert cdi.work_mode == "hybrid" and cdi.credentials == ["CDIP", "CCDS"] and cdi.salary_max == 95000


def test_atom_entries_use_the_author_as_employer():
    [audit], problems = feeds.read_feed_or_page(str(JOBS / "feed.atom"))
    assert problems == []
    assert (audit.title, audit.employer, audit.city, audit.state) == ("Coding Auditor", "Rockies Health", "Denver", "CO")
    assert audit.credentials == ["CPC", "CCS-P"] and audit.apply_url == "https://rockies.example/jobs/42"


def test_schema_org_jobposting_json_ld():
    [ed], problems = feeds.read_feed_or_page(str(JOBS / "jobposting.html"))
    assert problems == []
    assert (ed.title, ed.employer, ed.city, ed.state, ed.work_mode) == (
        "Emergency Department Coder", "Prairie Health", "Wichita", "KS", "remote")
    assert (ed.salary_min, ed.salary_max, ed.salary_period) == (27, 31, "hour")
    assert ed.credentials == ["CCS", "CPC"] and ed.experience == "3+ years"
    assert ed.expires_at == datetime(2027, 1, 31, tzinfo=UTC) and ed.source_ref == "ED-2026-9"


def test_duplicates_merge_by_apply_url_and_by_employer_title_location(db):
    with db.session() as session:
        csv_report = board.import_inputs(session, *importers.read_file(str(JOBS / "jobs.csv")))
        json_report = board.import_inputs(session, *importers.read_file(str(JOBS / "jobs.json")))
    assert len(csv_report.created) == 3 and len(csv_report.problems) == 1
    # Same apply URL once tracking parameters and the trailing slash are ignored.
    assert json_report.merged == [csv_report.created[0]] and len(json_report.created) == 1
    with db.read() as session:
        merged = session.get(Job, csv_report.created[0])
        assert (merged.salary_min, merged.salary_max) == (56000, 66000)   # the newer source wins
        assert merged.credentials == ["CPC"]
        assert len(session.exec(select(Job)).all()) == 4
    # Same employer + title + location, another URL: still the same posting.
    again = importers.JobInput(title="Inpatient  Coder II", employer="gulf coast medical", city="Houston",
                               state="TX", work_mode="onsite", apply_url="https://other.example/x", source="json")
    with db.session() as session:
        job, created = board.upsert(session, again)
    assert not created and job.id == csv_report.created[1]


def test_a_posting_past_its_expiry_is_stored_expired_and_open_ones_expire_on_time(db):
    past = importers.JobInput(title="Old", employer="E", apply_url="https://e.example/1",
                              expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    soon = importers.JobInput(title="Soon", employer="E", apply_url="https://e.example/2",
                              expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    with db.session() as session:
        old, _ = board.upsert(session, past)
        new, _ = board.upsert(session, soon)
        assert old.status == JobStatus.EXPIRED and new.status == JobStatus.OPEN
        assert board.expire_overdue(session, now=datetime(2030, 1, 2, tzinfo=UTC)) == 1
        session.refresh(new)
        assert new.status == JobStatus.EXPIRED


def test_an_apply_link_that_is_not_a_web_address_is_refused():
    inputs, problems = importers.read_json(
        '[{"title": "Coder", "employer": "E", "apply_url": "javascript:alert(1)"}]', "evil.json")
    assert inputs == [] and "not an http(s) address" in problems[0]
