"""``digest_wire`` (the digest's bulk assembler) writes the email the
stdlib builds -- same headers, same bodies -- and a List-Unsubscribe a mail
client can read (angle-bracketed URIs, not RFC 2047 encoded words)."""

from __future__ import annotations

import html
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
    # the same text; the HTML may write a character as a reference (so that the part can go 7bit)
    assert ours.get_body(("plain",)).get_content() == reference.get_body(("plain",)).get_content()
    assert html.unescape(ours.get_body(("html",)).get_content()) == html.unescape(reference.get_body(("html",)).get_content())
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


def _cte(raw: bytes) -> list[str]:
    return [part["Content-Transfer-Encoding"] for part in _parse(raw).walk() if part.get_content_maintype() == "text"]


def test_ascii_parts_go_as_7bit_and_others_as_quoted_printable():
    """7bit only when the part already is 7-bit text; what is sent reads back
    as what was rendered either way."""
    ascii_text, html = "Remote coder\n" * 3, '<p style="margin:0">Remote = coder</p>\n'
    cases = [(ascii_text, html, ["7bit", "7bit"]),
             ("Kodierung in Köln\n", html, ["quoted-printable", "7bit"]),
             (ascii_text, "<p>" + "x" * 1200 + "</p>\n", ["7bit", "quoted-printable"]),
             ("a bare\rCR\n", html, ["quoted-printable", "7bit"])]
    for text, markup, expected in cases:
        wire = digest_wire.digest_wire(digest_wire.Rendered(subject="Jobs", text=text, html=markup),
                                       to="p1@example.org", from_addr="jobs@mailbot.example", from_name="Jobs",
                                       domain="mailbot.example", list_unsubscribe="<https://x.example/u>",
                                       static={})
        assert _cte(wire.raw) == expected
        message = _parse(wire.raw)
        assert message.get_body(("html",)).get_content().replace("\r\n", "\n") == markup
        assert all(len(line) <= 998 for line in wire.raw.split(b"\r\n"))


def test_a_7bit_part_holding_the_boundary_gets_another_one(monkeypatch):
    draws = iter([0xABC, 0xABC, 0xDEF])
    monkeypatch.setattr(digest_wire.random, "getrandbits", lambda bits: next(draws))
    taken = f"==========={0xABC:024x}=="
    text = f"a posting that says --{taken}\n"
    wire = digest_wire.digest_wire(digest_wire.Rendered(subject="Jobs", text=text, html="<p>x</p>\n"),
                                   to="p1@example.org", from_addr="jobs@mailbot.example", from_name="Jobs",
                                   domain="mailbot.example", list_unsubscribe="<https://x.example/u>", static={})
    message = _parse(wire.raw)
    assert message.get_boundary() == f"==========={0xDEF:024x}=="
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == text


def test_html_characters_go_as_references_so_the_part_stays_7bit():
    markup = "<p>Coder &mdash; Austin · CPC ünïcode 😀</p>\n".replace("&mdash;", "—")
    wire = digest_wire.digest_wire(digest_wire.Rendered(subject="Jobs", text="x\n", html=markup),
                                   to="p1@example.org", from_addr="jobs@mailbot.example", from_name="Jobs",
                                   domain="mailbot.example", list_unsubscribe="<https://x.example/u>", static={})
    assert _cte(wire.raw) == ["7bit", "7bit"]
    sent = _parse(wire.raw).get_body(("html",)).get_content()
    assert "&#8212;" in sent and html.unescape(sent).replace("\r\n", "\n") == markup
    # inside <style> a reference is not decoded: such HTML keeps its characters, quoted-printable
    styled = '<style>p:after{content:"—"}</style><p>—</p>\n'
    wire = digest_wire.digest_wire(digest_wire.Rendered(subject="Jobs", text="x\n", html=styled),
                                   to="p1@example.org", from_addr="jobs@mailbot.example", from_name="Jobs",
                                   domain="mailbot.example", list_unsubscribe="<https://x.example/u>", static={})
    assert _cte(wire.raw) == ["7bit", "quoted-printable"]
    assert _parse(wire.raw).get_body(("html",)).get_content().replace("\r\n", "\n") == styled
