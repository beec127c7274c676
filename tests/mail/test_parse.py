"""Parsing the corpus of real-world-shaped messages in tests/data/."""

from __future__ import annotations

import pytest

from mailbot.mail.parse import ParseError, parse
from tests.mail.conftest import corpus, eml

UNPARSEABLE = {
    "not_an_email.eml": "no header fields",
    "no_sender.eml": "no sender",
}


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_every_corpus_message_parses_or_fails_with_a_reason(path):
    raw = path.read_bytes()
    if path.name in UNPARSEABLE:
        with pytest.raises(ParseError, match=UNPARSEABLE[path.name]):
            parse(raw)
        return
    parsed = parse(raw)
    assert parsed.from_addr or parsed.envelope_from
    assert parsed.message_id.startswith("<") and parsed.message_id.endswith(">")
    assert "\ufffd" not in parsed.subject
    assert "\x00" not in parsed.text


def test_an_empty_message_is_refused_with_a_reason():
    with pytest.raises(ParseError, match="empty message"):
        parse(b"\r\n\r\n")


def test_quoted_history_and_our_reply_marker_are_stripped_from_a_reply():
    parsed = parse(eml("reply_quoted.eml"))
    assert parsed.text == "The patient was seen on 11/20/2026 and the injection was ultrasound guided (20611)."
    assert "reply above this line" in parsed.full_text
    assert parsed.in_reply_to == "<ack.7@mailbot.localhost>"
    assert parsed.references == ["<CAF1x2=question1@mail.clinic.example>", "<ack.7@mailbot.localhost>"]
    assert parsed.thread_ids[0] == "<ack.7@mailbot.localhost>"
    assert parsed.reference == 7


def test_the_signature_is_stripped_and_codes_are_found():
    parsed = parse(eml("plain_question.eml"))
    assert "Jane Doe, CPC" not in parsed.text and "555-0100" not in parsed.text
    assert "20610" in parsed.codes and "M17.11" in parsed.codes
    assert "62701" not in parsed.codes            # the ZIP in the signature is not a code
    assert parsed.from_addr == "jane.doe@clinic.example" and parsed.from_name == "Jane Doe"


def test_html_only_mail_becomes_text_without_markup_or_script():
    parsed = parse(eml("html_only.eml"))
    assert "Is modifier -JW required" in parsed.text
    assert "<p>" not in parsed.text and "alert(" not in parsed.text
    assert parsed.html.startswith("<html>")
    assert parsed.subject == "Modifier question \u2013 J1030"
    assert parsed.codes == ["J1030"]


@pytest.mark.parametrize("name, subject, snippet", [
    ("latin1.eml", "Diabète et néphropathie", "diabète de type 2 avec néphropathie"),
    ("shift_jis.eml", "コードの質問", "コード 99214"),
    ("broken_charset.eml", "Café visit coding", "fell at a café"),
    ("raw_8bit_headers.eml", "Código para visita — 99203?", "¿Es correcto 99203"),
    ("encoded_word_subject.eml", "Re: ¿Código correcto? [#Q-1042]", "telehealth"),
])
def test_charsets_and_encoded_words_survive(name, subject, snippet):
    parsed = parse(eml(name))
    assert parsed.subject == subject
    assert snippet in parsed.text


def test_the_reference_token_is_read_and_is_not_a_code():
    parsed = parse(eml("encoded_word_subject.eml"))
    assert parsed.reference == 1042
    assert "Q1042" not in parsed.codes
    assert parsed.from_name == "María López"


def test_a_missing_message_id_is_generated_stably():
    first, second = parse(eml("missing_message_id.eml")), parse(eml("missing_message_id.eml"))
    assert first.message_id_generated and first.message_id == second.message_id
    assert first.message_id.endswith("@mailbot.localhost>")


def test_nested_multiparts_give_the_plain_body_and_list_every_attachment():
    parsed = parse(eml("nested_multipart.eml"))
    assert parsed.text.startswith("Total knee 27447")
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("logo.png", "image/png"), ("op-note.pdf", "application/pdf")]
    assert parsed.attachments[1].data.startswith(b"%PDF")


def test_attachment_names_cannot_carry_paths_and_oversized_ones_are_not_kept():
    parsed = parse(eml("attachments.eml"), max_attachment_size=20)
    names = [a.filename for a in parsed.attachments]
    assert names == [".._.._etc_passwd", "run.exe"]
    small, big = parsed.attachments
    assert small.data == b"root:x:0:0\n" and not small.truncated
    assert big.data is None and big.truncated and big.size == 66


def test_attachments_beyond_the_count_cap_are_counted_not_kept():
    parsed = parse(eml("nested_multipart.eml"), max_attachments=1)
    assert len(parsed.attachments) == 1 and parsed.attachments_dropped == 1


def test_a_forwarded_message_is_the_question():
    attached = parse(eml("forwarded_attachment.eml"))
    assert "97110 x4 units denied" in attached.text
    assert attached.attachments[0].content_type == "message/rfc822"
    inline = parse(eml("forwarded_inline.eml"))
    assert "G0439 or G0438?" in inline.text


def test_the_null_sender_is_kept_distinct_from_an_unknown_sender():
    assert parse(eml("bounce_dsn.eml"), envelope_from="<>").null_sender
    assert not parse(eml("plain_question.eml"), envelope_from="").null_sender
    assert parse(eml("plain_question.eml"), envelope_from="").reply_address == "jane.doe@clinic.example"
