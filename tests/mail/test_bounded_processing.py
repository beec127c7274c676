"""Issue 17, points 2, 3 and 15, after intake: a message over a bound is
quarantined with its reason before the parser sees it, a message whose
processing keeps killing the process is quarantined instead of crash-looping,
and the work one message can ask for is bounded."""

from __future__ import annotations

from sqlmodel import select

from mailbot.mail import intake, limits
from mailbot.models import InboundMessage, QuarantineItem
from mailbot.services import inbound
from mailbot.services.inbound import MAX_PROCESSING_ATTEMPTS, process, replay

ASK = "ask@mailbot.localhost"
QUESTION = b"From: Coder <coder@clinic.example>\r\nSubject: 99213?\r\nMessage-ID: <ok@clinic.example>\r\n\r\nIs 99213 right?\r\n"


def store(ctx, raw: bytes) -> int:
    # As the IMAP poller stores it: no SMTP edge refused it first.
    return intake.accept(ctx.db, raw, source="imap", envelope_from="", envelope_to=[ASK])


def row(ctx, inbound_id: int) -> InboundMessage:
    with ctx.db.read() as session:
        return session.get(InboundMessage, inbound_id)


def folded_subject(lines: int) -> bytes:
    return b"Subject: " + b"\r\n ".join(b"word%05d lorem ipsum dolor" % i for i in range(lines))


def test_a_subject_folded_over_2700_lines_is_quarantined_before_parsing(ctx):
    bad = store(ctx, b"From: a@example.org\r\n" + folded_subject(2_700) + b"\r\n\r\nhi\r\n")
    good = store(ctx, QUESTION)
    assert process(ctx, bad) == []
    assert [p.actor for p in process(ctx, good)] == ["advance_consultation"]
    assert row(ctx, bad).status == "quarantined"
    assert row(ctx, bad).error == "cannot parse: the subject header is over 32768 bytes"
    assert row(ctx, good).status == "processed"


def test_sixty_thousand_adjacent_encoded_words_are_quarantined_before_parsing(ctx):
    words = b"\r\n ".join([b"=?utf-8?q?a?=" * 50] * 1_200)
    bad = store(ctx, b"From: a@example.org\r\nSubject: " + words + b"\r\n\r\nhi\r\n")
    process(ctx, bad)
    assert row(ctx, bad).status == "quarantined" and "is over" in row(ctx, bad).error


def test_fifty_thousand_addresses_are_quarantined_before_parsing(ctx):
    to = b",\r\n ".join(b"u%d@x.example" % i for i in range(1_000))
    bad = store(ctx, b"From: a@example.org\r\nTo: " + to + b"\r\nSubject: hi\r\n\r\nhi\r\n")
    process(ctx, bad)
    assert row(ctx, bad).error == "cannot parse: more than 500 addresses in the address headers"


def test_more_mime_parts_than_the_bound_are_quarantined(ctx):
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(limits.MAX_PARTS + 5))
    raw = (b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n")
    bad = store(ctx, raw)
    process(ctx, bad)
    assert row(ctx, bad).error == f"cannot parse: more than {limits.MAX_PARTS} MIME parts"


def test_an_eight_megabyte_question_keeps_only_the_bounded_text(ctx):
    body = b"Is 99213 right for this visit? " + b"lorem ipsum dolor sit amet " * 300_000
    big = store(ctx, b"From: Coder <coder@clinic.example>\r\nSubject: long\r\n\r\n" + body + b"\r\n")
    process(ctx, big)
    stored = row(ctx, big)
    assert stored.status == "processed"
    assert len(stored.full_text) <= limits.MAX_TEXT_CHARS + 100
    assert stored.full_text.endswith(f"[... text cut at {limits.MAX_TEXT_CHARS} characters]")
    assert "99213" in stored.codes


def test_an_eight_megabyte_html_only_question_converts_only_the_bounded_html(ctx):
    """html2text took 34 s of a worker for 8 MB of HTML; only the first
    ``MAX_HTML_CHARS`` are converted (the raw message keeps everything)."""
    from mailbot.mail.text import html_to_text

    html = "<p>Is 99213 right?</p>" + "<p>lorem <b>ipsum</b></p>" * 400_000
    assert "99213" in html_to_text(html)
    assert len(html_to_text(html)) < limits.MAX_HTML_CHARS
    body = html.encode() + b"\r\n"
    big = store(ctx, b"From: Coder <coder@clinic.example>\r\nSubject: html\r\nContent-Type: text/html\r\n\r\n" + body)
    process(ctx, big)
    assert row(ctx, big).status == "processed" and "99213" in row(ctx, big).codes


def test_a_message_whose_processing_keeps_dying_is_quarantined_not_crash_looped(ctx):
    """Point 3: the row stayed ``received`` and the reconciler re-processed it
    after every restart.  Each start is counted before any work, so the
    starts that never finished are visible to the next one."""
    poison = store(ctx, QUESTION)
    for _ in range(MAX_PROCESSING_ATTEMPTS):
        assert inbound._start_attempt(ctx, poison) is not None   # started ... and the process died
    assert process(ctx, poison) == []
    stored = row(ctx, poison)
    assert stored.status == "quarantined"
    assert f"did not finish {MAX_PROCESSING_ATTEMPTS} times" in stored.error
    with ctx.db.read() as session:
        item = session.exec(select(QuarantineItem).where(QuarantineItem.ref_id == poison)).one()
    assert item.stage == "processing"
    # An operator's replay starts the count again, and the message is handled.
    pokes = replay(ctx, item.id)
    assert [p.actor for p in process(ctx, pokes[0][1])] == ["advance_consultation"]
    assert row(ctx, poison).status == "processed" and row(ctx, poison).attempts == 1


def test_one_start_that_died_is_retried(ctx):
    survivor = store(ctx, QUESTION)
    inbound._start_attempt(ctx, survivor)                        # one crash: bad luck, not the message
    process(ctx, survivor)
    assert row(ctx, survivor).status == "processed"
