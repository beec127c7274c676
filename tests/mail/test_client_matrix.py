"""Issue 17, point 13: replies as real mail clients write them
(``tests/data/clients/*.eml``), and the new text extracted exactly -- no
quoted history, no client signature line, no PGP armor, the right charset.

The same messages go through the real SMTP listener and the router, and the
stored ``InboundMessage.text`` (what the reviewer and the drafter see) is
checked too.
"""

from __future__ import annotations

import pytest

from mailbot.mail.parse import parse
from mailbot.mail.text import decode_bytes
from tests.conftest import DATA_DIR
from tests.mail.flow import deliver, row

CLIENTS = DATA_DIR / "clients"

MATRIX = {
    # fixture: (client, the new text)
    "outlook_desktop.eml": ("Outlook (Windows), From:/Sent: header block",
                            "The date of service is 11/20/2026 and the payer is Medicare."),
    "outlook_html_empty_plain.eml": ("Outlook, empty text/plain next to the HTML",
                                     "Modifier 25 goes on 99213, right?"),
    "outlook_web.eml": ("Outlook on the web, underscore separator, Windows-1252",
                        "Yes \u2013 the E/M was significant and separately identifiable."),
    "gmail.eml": ("Gmail, attribution wrapped over two lines",
                  "The injection was into the right knee, so 20610-RT."),
    "apple_mail.eml": ("Apple Mail on iPhone, 'Sent from my iPhone'",
                       "It was a new patient visit, so 99203 instead of 99213."),
    "thunderbird.eml": ("Thunderbird, German attribution", "The patient is 67 years old; the visit was on 20.11.2026.\n\nJana"),
    "thunderbird_en.eml": ("Thunderbird, 'On <date>, <name> wrote:'",
                           "Both knees were injected, so 20610 x2 with modifier 50?"),
    "android_samsung.eml": ("Samsung Email on Android, '-------- Original message --------', base64",
                            "The payer is Aetna, not Medicare."),
    "lotus_notes.eml": ("Lotus Notes 9, tab-aligned header block",
                        "The procedure note says ultrasound guidance was used, so 20611?\n\n"
                        "Jane Doe\nCoding Specialist, Health Information Management"),
    "lotus_notes_wrote_on.eml": ("Lotus Notes 8, '<name> wrote on <date>:'", "No imaging was used."),
    "groupwise.eml": ("GroupWise, '>>> name date >>>'",
                      "Please use the 2026 fee schedule; the claim was filed in December."),
    "yahoo.eml": ("Yahoo Mail, indented attribution",
                  "The diagnosis is M17.11, primary osteoarthritis of the right knee."),
    "utf7_reply.eml": ("Outlook, UTF-7 under a label Python does not know",
                       "The visit was at the caf\u00e9 clinic \u2013 the one on Main Street."),
    "pgp_mime_signed.eml": ("Thunderbird, PGP/MIME multipart/signed", "The units billed were 2, one per knee."),
    "pgp_inline.eml": ("inline PGP (cleartext signature, dash-escaped signature line)",
                       "Was 99213 billed on the same day as 20610?"),
    "invalid_byte_utf8.eml": ("one invalid byte in declared UTF-8",
                              "Die Patientin (M\u00fcller) war am 20.11. in der Praxis \u2013 Knie rechts\ufffd."),
}


def test_every_fixture_is_in_the_matrix():
    assert sorted(p.name for p in CLIENTS.glob("*.eml")) == sorted(MATRIX)


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_the_new_text_of_each_client_reply_is_extracted_exactly(name):
    assert parse((CLIENTS / name).read_bytes()).text == MATRIX[name][1]


def test_the_matrix_over_smtp_stores_the_same_new_text(ctx, listener, stored):
    for name, (_, expected) in sorted(MATRIX.items()):
        raw = (CLIENTS / name).read_bytes()
        inbound_id = deliver(ctx, listener, stored, raw, sender="jane.doe@clinic.example")
        assert row(ctx, inbound_id).text == expected, name


def test_one_invalid_byte_loses_only_that_byte():
    text = "Zürich – naïve ok".encode("utf-8")
    assert decode_bytes(text[:3] + b"\xff" + text[3:], "utf-8") == "Z\u00fc\ufffdrich \u2013 na\u00efve ok"
    assert decode_bytes("日本語".encode("shift_jis") + b"\xff", "shift_jis") == "日本語\ufffd"


def test_mislabelled_western_mail_is_still_read_as_windows_1252():
    assert decode_bytes("café – ok".encode("cp1252"), "utf-8") == "café – ok"
    assert decode_bytes("café".encode("cp1252"), "us-ascii") == "café"


def test_a_from_line_the_sender_wrote_is_not_taken_for_history():
    raw = (b"From: j@clinic.example\r\nSubject: q\r\n\r\nFrom: the op note, 20610 was done.\r\n"
           b"Is 99213 separately billable?\r\n")
    assert parse(raw).text == "From: the op note, 20610 was done.\nIs 99213 separately billable?"
