"""``digest_wire`` (the digest's bulk assembler) writes the email the
stdlib builds -- same headers, same bodies -- and a List-Unsubscribe a mail
client can read (angle-bracketed URIs, not RFC 2047 encoded words)."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from mailbot.jobs import digest, digest_wire
from mailbot.jobs.matching import JobIndex
from mailbot.mail.send import as_bytes
from mailbot.models.jobs import Job, Subscriber, Subscription
from tests.conftest import make_settings
from tests.jobs.support import NOW


def _parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def _sections(settings, subscriber, summary):
    jobs = [Job(id=i, title=f"{'Remote' if i % 2 else 'Onsite'} Coder {i}", employer="Employer Health",
                city="Austin", state="TX", work_mode="remote" if i % 2 else "onsite", credentials=["CPC"],
                specialty="audit", experience="2+ years", apply_url=f"https://jobs.example/{i}",
                posted_at=NOW, opened_at=NOW, updated_at=NOW) for i in range(1, 8)]
    sub = Subscription(id=3, subscriber_id=subscriber.id, kind="jobs", criteria={}, summary=summary,
                       frequency="daily", status="active")
    return digest.sections_for(settings, subscriber, [(sub, None, JobIndex(jobs))])


@pytest.mark.parametrize("email, summary", [
    ("p1@example.org", "remote jobs, daily"),
    ("a" * 50 + ".o'neil+jobs@mail.example.org", "Kodierung in Köln, ünïcode and a summary long enough to need folding " * 2),
])
def test_the_wire_digest_has_the_headers_and_bodies_of_the_stdlib_build(tmp_path, email, summary):
    settings = make_settings(tmp_path, None)
    subscriber = Subscriber(id=7, email=email, status="active")
    sections = _sections(settings, subscriber, summary)
    wire = digest.compose_digest_wire(settings, subscriber, sections, "daily")
    ours, reference = _parse(wire.raw), _parse(as_bytes(digest.compose_digest(settings, subscriber, sections, "daily")))
    assert list(ours.keys()) == list(reference.keys())
    differ = [k for k in reference.keys() if str(ours[k]) != str(reference[k])]
    assert set(differ) <= {"Date", "Message-ID", "Content-Type"}
    for kind in ("plain", "html"):
        assert ours.get_body((kind,)).get_content() == reference.get_body((kind,)).get_content()
    assert (wire.to_addr, wire.subject, wire.message_id) == (email, str(ours["Subject"]), ours["Message-ID"])
    assert all(len(line) <= 998 for line in wire.raw.split(b"\r\n")) and b"\n" not in wire.raw.replace(b"\r\n", b"")


def test_list_unsubscribe_is_written_as_uris_a_mail_client_reads(tmp_path):
    settings = make_settings(tmp_path, None)
    subscriber = Subscriber(id=7, email="p1@example.org", status="active")
    wire = digest.compose_digest_wire(settings, subscriber, _sections(settings, subscriber, "remote"), "daily")
    head = wire.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    [line] = [h for h in head.replace("\r\n ", " ").split("\r\n") if h.startswith("List-Unsubscribe:")]
    url, mailto = (part.strip() for part in line.split(":", 1)[1].split(","))
    expected = digest.list_headers(settings, 7, None, "jobs", kind="jobs")["List-Unsubscribe"]
    assert f"{url}, {mailto}" == expected and "=?" not in line
    assert url.startswith("<http") and mailto.startswith("<mailto:") and "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head


def test_a_header_the_fast_path_cannot_write_goes_through_the_stdlib():
    assert digest_wire._plain_or_stdlib("Subject", "x" * 100).count(b"\r\n") >= 2    # folded
    assert digest_wire._plain_or_stdlib("Subject", "Köln").startswith(b"Subject: =?utf-8?")
