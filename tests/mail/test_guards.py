"""Guards: machine mail, loops, bounces, sender policy and the daily cap."""

from __future__ import annotations

from datetime import date
from email import message_from_bytes, policy

import pytest

from mailbot.mail import guards
from mailbot.mail.parse import parse
from tests.conftest import make_settings
from tests.mail.conftest import eml


def _msg(headers: str, body: str = "hi\n"):
    return message_from_bytes((headers.strip() + "\n\n" + body).encode(), policy=policy.default)


@pytest.mark.parametrize("name, reason", [
    ("auto_reply_rfc3834.eml", "Auto-Submitted: auto-replied"),
    ("auto_reply_exchange.eml", "X-Auto-Response-Suppress: all"),
    ("list_mail.eml", "Precedence: list"),
    ("mdn_read_receipt.eml", "report (disposition-notification)"),
])
def test_machine_and_list_mail_is_recognised(name, reason):
    assert guards.auto_submitted(parse(eml(name)).message) == reason


@pytest.mark.parametrize("headers", [
    "From: a@x.example\nList-Id: <l.x.example>",
    "From: a@x.example\nX-Autoreply: yes",
    "From: a@x.example\nSubject: Automatic reply: away",
    "From: a@x.example\nSubject: Out of office until Monday",
    "From: a@x.example\nPrecedence: bulk",
    # the author's own Precedence sits below the first Received header
    "Received: from relay.x.example\nFrom: a@x.example\nPrecedence: bulk",
    # Mailman 2: no RFC 2369 headers, only its own and the list robot's address
    "From: ppp@x.example\nX-Mailman-Version: 2.0.4",
    "From: ppp-request@x.example\nSubject: Ppp digest, Vol 1 #2",
    "From: a@x.example\nSender: ppp-admin@x.example",
    "From: owner-ppp@x.example",
])
def test_other_auto_reply_signals(headers):
    assert guards.auto_submitted(_msg(headers)) is not None


def test_a_person_is_not_an_auto_responder():
    assert guards.auto_submitted(parse(eml("plain_question.eml")).message) is None
    assert guards.auto_submitted(_msg("From: a@x.example\nAuto-Submitted: no\nSubject: out of ideas")) is None


def test_our_own_mail_coming_back_is_recognised(tmp_path):
    settings = make_settings(tmp_path)
    assert guards.own_mail(_msg("X-Loop: mailbot@mailbot.localhost"), settings) == "X-Loop: mailbot@mailbot.localhost"
    ours = _msg("From: lookup@mailbot.localhost\nMessage-ID: <123.mailbot@mailbot.localhost>")
    assert "from our own address" in guards.own_mail(ours, settings)
    sent = _msg("From: someone@else.example\nMessage-ID: <cmd.7@mailbot.localhost>")
    assert "mail we sent" in guards.own_mail(sent, settings, lambda mid: mid == "<cmd.7@mailbot.localhost>")
    assert guards.own_mail(parse(eml("plain_question.eml")).message, settings) is None


def test_staff_on_our_domain_are_not_mistaken_for_a_loop(tmp_path):
    staff = _msg("From: Ana <ana@mailbot.localhost>\nMessage-ID: <abc@mailbot.localhost>")
    assert guards.own_mail(staff, make_settings(tmp_path)) is None


def test_a_standard_dsn_gives_recipient_status_and_diagnostic(tmp_path):
    parsed = parse(eml("bounce_dsn.eml"), envelope_from="<>")
    assert guards.bounce(parsed, ["bounces@mailbot.localhost"], make_settings(tmp_path)).startswith("delivery status")
    [report] = guards.dsn_reports(parsed.message)
    assert report.recipient == "gone@clinic.example"
    assert (report.action, report.status, report.permanent) == ("failed", "5.1.1", True)
    assert "User unknown" in report.diagnostic
    assert guards.returned_message_id(parsed.message) == "<answer.3@mailbot.localhost>"


def test_a_plain_text_bounce_still_names_the_recipient(tmp_path):
    parsed = parse(eml("bounce_qmail.eml"), envelope_from="<>")
    assert guards.bounce(parsed, ["bounces@mailbot.localhost"], make_settings(tmp_path)) is not None
    [report] = guards.dsn_reports(parsed.message)
    assert report.recipient == "subscriber@oldhost.example" and report.status == "5.1.1" and report.permanent


def test_a_delay_warning_is_not_permanent():
    [report] = guards.dsn_reports(parse(eml("bounce_exim_delayed.eml")).message)
    assert report.recipient == "slow@busy.example"
    assert report.status == "4.4.1" and report.action == "delayed" and not report.permanent


def test_a_read_receipt_is_not_a_bounce(tmp_path):
    parsed = parse(eml("mdn_read_receipt.eml"), envelope_from="jack@clinic.example")
    assert guards.bounce(parsed, ["ask@mailbot.localhost"], make_settings(tmp_path)) is None


@pytest.mark.parametrize("allow, address, ok", [
    ([], "anyone@x.example", True),
    (["jane@clinic.example"], "Jane@Clinic.example", True),
    (["@clinic.example"], "bob@clinic.example", True),
    (["clinic.example"], "bob@clinic.example", True),
    (["clinic.example"], "bob@evil-clinic.example", False),
])
def test_the_sender_allow_list(allow, address, ok):
    assert guards.sender_allowed(allow, address) is ok


def test_authentication_results_are_trusted_only_from_our_authserv_id():
    msg = _msg("Authentication-Results: mx.mailbot.example; dmarc=fail header.from=bank.example\n"
               "Authentication-Results: evil.example; dmarc=pass; spf=pass")
    assert guards.authentication_results(msg, "mx.mailbot.example") == {"dmarc": "fail"}
    assert guards.authentication_failed(msg, "mx.mailbot.example") == "DMARC failed"
    assert guards.authentication_failed(msg, "") is None       # not configured: no policy
    forged = _msg("Authentication-Results: evil.example; dmarc=pass")
    assert "no Authentication-Results header from mx.mailbot.example" == guards.authentication_failed(forged, "mx.mailbot.example")
    good = _msg("Authentication-Results: mx.mailbot.example 1; spf=pass smtp.mailfrom=a.example; dkim=pass; dmarc=pass")
    assert guards.authentication_failed(good, "mx.mailbot.example") is None


def test_the_daily_cap_allows_n_replies_then_one_notice_then_nothing(db):
    day = date(2026, 11, 24)
    with db.session() as session:
        verdicts = [guards.reserve_auto_reply(session, "Loop@Example.org", cap=3, day=day) for _ in range(6)]
    assert verdicts == ["ok", "ok", "ok", "notice", "over", "over"]
    with db.session() as session:
        assert guards.reserve_auto_reply(session, "loop@example.org", cap=3, day=date(2026, 11, 25)) == "ok"
        assert guards.reserve_auto_reply(session, "other@example.org", cap=3, day=day) == "ok"


def test_a_precedence_a_forwarder_added_keeps_the_message_but_silences_the_answer():
    # A qmail SRS forwarder stamps "Precedence: bulk" above the author's Received lines.
    msg = _msg("Received: from forwarder.example\nPrecedence: bulk\nReceived: from mua.example\n"
               "From: Person <person@x.example>\nSubject: Re: Fwd: Stuff")
    assert guards.auto_submitted(msg) is None
    assert "in transit" in guards.forwarded_bulk(msg)
    written = _msg("Received: from relay.example\nFrom: a@x.example\nPrecedence: bulk")
    assert guards.forwarded_bulk(written) is None
    assert guards.forwarded_bulk(_msg("From: a@x.example\nSubject: a person who asks")) is None
