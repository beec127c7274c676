"""Commands end to end: a real SMTP conversation with the listener, the
router and the command actor on the embedded worker, and the reply handed to
a relay sink."""

from __future__ import annotations

import re

import pytest

from tests.commands.service import start_service
from tests.commands.support import bodies


@pytest.fixture(scope="module")
def service(codes_db, tmp_path_factory):
    running, stop = start_service(codes_db, tmp_path_factory.mktemp("svc"))
    yield running
    stop()


def test_help_by_email_answers_in_the_same_thread(service, db):
    message_id = service.send("HELP", "")
    [reply] = service.replies_to(message_id)
    message = reply.message
    assert reply.recipients == ["coder@example.org"]
    assert re.fullmatch(r"bounces\+\d+-[0-9a-f]{12}@mailbot\.localhost", reply.envelope_from)  # VERP
    assert message["Subject"] == "Re: HELP"
    assert message["Auto-Submitted"] == "auto-replied"
    text, html = bodies(message)
    assert "LOOKUP 50250 J1030 E11.22" in text and "SUBSCRIBE JOBS" in html


def test_lookup_by_email_answers_one_verified_card_per_code(service, db):
    message_id = service.send("LOOKUP 50250 J1030 E11.22", "")
    [reply] = service.replies_to(message_id)
    assert reply.message["Subject"] == "Re: LOOKUP 50250 J1030 E11.22"
    assert reply.message["X-Mailbot-Kind"] == "lookup"
    text, html = bodies(reply.message)
    for part in (text, html):
        assert "Type 2 diabetes mellitus with diabetic chronic kidney disease" in part
        assert "Injection, methylprednisolone acetate, 40 mg" in part
        assert "ICD-10-CM FY20" in part and "HCPCS Level II 2026" in part   # versions cited
        assert "AMA" in part                                                # CPT: licence note, no descriptor
        assert "Use additional code" in part                                # ICD-10-CM notes
    assert "Global days" in text and "National payment estimate" in text    # PFS facts for 50250
    assert '<div class="card card-ok" style="' in html and '<style' not in html  # CSS inlined


def test_codes_on_the_first_line_to_ask_are_a_lookup_too(service, db):
    message_id = service.send("a question", "LOOKUP e1122\n\nthanks", to="ask@mailbot.localhost")
    [reply] = service.replies_to(message_id)
    assert reply.message["From"].addresses[0].addr_spec == "ask@mailbot.localhost"
    assert "E11.22" in bodies(reply.message)[0]


def test_bare_codes_to_lookup_are_looked_up(service, db):
    message_id = service.send("codes please", "e11.22 99213\n-- \nCasey, CPC")
    [reply] = service.replies_to(message_id)
    text, _ = bodies(reply.message)
    assert reply.message["X-Mailbot-Kind"] == "lookup" and "E11.22" in text and "99213" in text


def test_unknown_codes_get_did_you_mean_suggestions(service, db):
    message_id = service.send("LOOKUP E11.99", "")
    text, _ = bodies(service.replies_to(message_id)[0].message)
    assert "NOT FOUND" in text and "Did you mean" in text and "E11.9" in text


def test_search_by_email_lists_verified_codes_and_how_to_look_them_up(service, db):
    message_id = service.send("SEARCH type 2 diabetes with kidney disease", "")
    [reply] = service.replies_to(message_id)
    text, html = bodies(reply.message)
    assert reply.message["X-Mailbot-Kind"] == "search"
    assert "E11.22" in text and "Code set: ICD-10-CM" in text
    assert "LOOKUP E11.22" in text and "LOOKUP E11.22" in html


def test_check_by_email_reports_validity_edits_and_mues(service, db):
    message_id = service.send("CHECK 20610 99213 E11.22 on 2026-03-01", "")
    [reply] = service.replies_to(message_id)
    text, html = bodies(reply.message)
    assert reply.message["X-Mailbot-Kind"] == "check"
    assert "VALIDITY" in text and "E11.22" in text
    assert "20610 (column 1) with 99213 (column 2)" in text
    assert "Modifier indicator 1" in text and "Standards of medical / surgical practice" in text
    assert "modifier may apply" in html
    mue_lines = text.split("MUE (most units per day)")[1]
    assert "20610" in mue_lines and " 2 " in mue_lines and "99213" in mue_lines


def test_check_says_when_no_modifier_can_unbundle_a_pair(service, db):
    message_id = service.send("CHECK 29881 29880", "")
    text, html = bodies(service.replies_to(message_id)[0].message)
    assert "29881 (column 1) with 29880 (column 2)" in text and "Modifier indicator 0" in text
    assert "no modifier allowed" in html


def test_too_many_codes_are_refused_with_the_limit(service, db):
    codes = " ".join(f"E11.{i}" for i in range(21))
    message_id = service.send(f"LOOKUP {codes}", "")
    text, _ = bodies(service.replies_to(message_id)[0].message)
    assert "21 codes" in text and "at most 20" in text


def test_a_second_poke_for_the_same_request_sends_nothing_more(service, db):
    from sqlmodel import select

    from mailbot.models import InboundMessage
    from mailbot.services import Poke
    from workflows.actors import dispatch

    message_id = service.send("LOOKUP 99213", "")
    service.replies_to(message_id)
    with db.read() as session:
        inbound_id = session.exec(select(InboundMessage.id).where(InboundMessage.message_id == message_id)).one()
    dispatch([Poke("run_command", inbound_id), Poke("process_inbound", inbound_id)])   # a duplicate, a replay
    service.settle()
    assert len([m for m in service.sink.messages if m.message["In-Reply-To"] == message_id]) == 1


def test_an_empty_message_to_lookup_gets_help(service, db):
    message_id = service.send("", "thanks!")
    [reply] = service.replies_to(message_id)
    text, _ = bodies(reply.message)
    assert "did not find a command" in text and "ADDRESSES" in text


def test_a_malformed_lookup_gets_a_helpful_reply(service, db):
    message_id = service.send("LOOKUP", "please")
    [reply] = service.replies_to(message_id)
    text, html = bodies(reply.message)
    assert "We found no codes" in text and "LOOKUP 50250 J1030 E11.22" in text
    assert reply.message["X-Mailbot-Kind"] == "command-error"


def test_a_13_word_search_is_trimmed_to_its_meaningful_words_not_refused(service, db):
    message_id = service.send("SEARCH please i need the code for type 2 diabetes with chronic kidney disease", "")
    [reply] = service.replies_to(message_id)
    text, _ = bodies(reply.message)
    assert "more than 12 words" in text and "left out: please, i, need, the, code" in text
    assert 'matches for "type 2 diabetes with chronic kidney disease"' in text and "E11.22" in text


def test_auto_replies_get_no_answer(service, db):
    service.send("HELP", "", from_addr="vacation@example.org", headers={"Auto-Submitted": "auto-replied"})
    service.send("Out of office", "", from_addr="ooo@example.org", headers={"X-Autoreply": "yes"})
    service.settle()
    assert service.sink.messages == [] or all(
        m.recipients[0] not in ("vacation@example.org", "ooo@example.org") for m in service.sink.messages)


def test_a_bounce_that_looks_like_a_command_gets_no_answer(service, db):
    import smtplib

    raw = (b"From: MAILER-DAEMON@mx.example.org\r\nTo: lookup@mailbot.localhost\r\n"
           b"Subject: LOOKUP 99213\r\nMessage-ID: <dsn-1@mx.example.org>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nLOOKUP 99213 could not be delivered.\r\n"
           b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
           b"Final-Recipient: rfc822; someone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n")
    with smtplib.SMTP("127.0.0.1", service.smtp_port, timeout=30) as smtp:
        smtp.sendmail("", ["lookup@mailbot.localhost"], raw)       # MAIL FROM:<>
    service.settle()
    assert not [m for m in service.sink.messages if m.message["In-Reply-To"] == "<dsn-1@mx.example.org>"]
    assert not [m for m in service.sink.messages if "mx.example.org" in m.recipients[0]]


def test_the_eleventh_request_gets_one_notice_and_the_twelfth_nothing(service, db):
    sender = "busy@example.org"
    ids = [service.send("HELP", "", from_addr=sender) for _ in range(12)]
    # Two worker threads route the twelve, so the one counted twelfth need not be the last sent:
    # wait for eleven replies to any of them, then for nothing more.
    service.sink.wait_for(11, where=lambda m: m.recipients == [sender])
    service.settle()
    mine = [m for m in service.sink.messages if m.recipients == [sender]]
    kinds = sorted(m.message["X-Mailbot-Kind"] for m in mine)
    assert kinds == ["cap-notice"] + ["help"] * 10
    answered = [m.message["In-Reply-To"] for m in mine]
    assert len(set(answered)) == 11 and set(answered) < set(ids)  # one reply each to 11 of the 12
