"""The command runner: one threaded automatic reply per command, never to robots."""

from __future__ import annotations

import pytest

from mailbot.commands import runner
from mailbot.models import InboundMessage
from tests.commands.support import bodies, parsed, replies, routed_command


def test_help_reply_threads_with_the_request_and_is_marked_automatic(ctx, db):
    inbound_id = routed_command(db, "HELP", "", message_id="<help-1@example.org>")

    pokes = runner.run(ctx, inbound_id)

    [row] = replies(db, inbound_id)
    assert pokes == [("send_outbound", row.id)]
    message = parsed(row)
    assert message["Subject"] == "Re: HELP"
    assert message["In-Reply-To"] == "<help-1@example.org>"
    assert "<help-1@example.org>" in message["References"]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["To"].addresses[0].addr_spec == "coder@example.org"
    assert message["From"].addresses[0].addr_spec == "lookup@mailbot.localhost"
    assert row.kind == "help"


def test_help_explains_every_address_and_command_with_examples(ctx, db):
    inbound_id = routed_command(db, "help", "")
    runner.run(ctx, inbound_id)
    text, html = bodies(parsed(replies(db, inbound_id)[0]))
    for needle in ("ask@mailbot.localhost", "lookup@mailbot.localhost", "jobs@mailbot.localhost",
                   "LOOKUP 50250 J1030 E11.22", "SEARCH", "CHECK 20610 99213", "SUBSCRIBE JOBS remote CPC weekly",
                   "SUBSCRIBE UPDATES", "UNSUBSCRIBE", "PAUSE", "RESUME", "LIST"):
        assert needle in text and needle in html, needle
    assert "<style" not in html and 'style="' in html  # CSS inlined for mail clients
    # the HPO licence: a service using the ontology says so, with the release used
    for needle in ("Human Phenotype Ontology", "2025-01-16", "https://hpo.jax.org"):
        assert needle in text and needle in html, needle


def test_running_twice_queues_exactly_one_reply(ctx, db):
    inbound_id = routed_command(db, "HELP", "")
    first = runner.run(ctx, inbound_id)
    second = runner.run(ctx, inbound_id)
    assert len(first) == 1 and second == []
    assert len(replies(db, inbound_id)) == 1


def test_a_racing_second_reply_is_refused_by_the_derived_message_id(ctx, db):
    inbound_id = routed_command(db, "HELP", "")
    with db.read() as session:
        inbound = session.get(InboundMessage, inbound_id)
    assert runner.reply_message_id(ctx, inbound) == runner.reply_message_id(ctx, inbound)
    runner.run(ctx, inbound_id)
    # Simulate a worker that passed the "already answered" check before the first committed.
    original = runner._already_answered
    runner._already_answered = lambda session, inbound_id: False
    try:
        assert runner.run(ctx, inbound_id) == []
    finally:
        runner._already_answered = original
    assert len(replies(db, inbound_id)) == 1


def test_no_reply_when_the_router_forbade_automatic_answers(ctx, db):
    inbound_id = routed_command(db, "LOOKUP 99213", "", auto_reply_ok=False)
    assert runner.run(ctx, inbound_id) == []
    assert replies(db) == []
    with db.read() as session:
        route = session.get(InboundMessage, inbound_id).route
    assert route[-1]["stage"] == "run_command" and route[-1]["result"] == "not answered"


def test_over_the_cap_gets_nothing(ctx, db):
    inbound_id = routed_command(db, "HELP", "", auto_reply_ok=False,
                                route=[{"rule": "daily_cap", "action": "mark", "reason": "over"}])
    assert runner.run(ctx, inbound_id) == []
    assert replies(db) == []


def test_auto_replies_and_bounces_get_no_answer_even_if_routed_as_commands(ctx, db):
    auto = routed_command(db, "HELP", "", headers={"Auto-Submitted": "auto-replied"}, message_id="<a@x>")
    bounce = routed_command(db, "HELP", "", envelope_from="", message_id="<b@x>")
    daemon = routed_command(db, "HELP", "", from_addr="MAILER-DAEMON@example.org", message_id="<c@x>")
    bulk = routed_command(db, "HELP", "", headers={"Precedence": "bulk"}, message_id="<d@x>")
    for inbound_id in (auto, bounce, daemon, bulk):
        assert runner.run(ctx, inbound_id) == []
    assert replies(db) == []


def test_the_message_that_reaches_the_cap_gets_one_notice_instead_of_an_answer(ctx, db):
    inbound_id = routed_command(db, "HELP", "", auto_reply_ok=False,
                                route=[{"rule": "daily_cap", "action": "mark", "reason": "notice"}])
    runner.run(ctx, inbound_id)
    [row] = replies(db, inbound_id)
    assert row.kind == "cap-notice"
    text, html = bodies(parsed(row))
    assert "limit of 10 automatic replies" in text and "limit of 10 automatic replies" in html
    assert parsed(row)["Subject"].startswith("Daily limit reached")


def test_an_unrecognised_command_to_lookup_gets_help_with_a_guess(ctx, db):
    inbound_id = routed_command(db, "question", "LOKUP 99213\n")
    runner.run(ctx, inbound_id)
    [row] = replies(db, inbound_id)
    text, _ = bodies(parsed(row))
    assert row.kind == "help"
    assert "did not find a command" in text and "Did you mean LOOKUP?" in text


def test_a_verb_without_a_handler_gets_help_saying_so(ctx, db):
    from mailbot.commands import HANDLERS

    saved = HANDLERS.pop("LIST", None)
    try:
        inbound_id = routed_command(db, "LIST", "", to="jobs@mailbot.localhost")
        runner.run(ctx, inbound_id)
    finally:
        if saved is not None:
            HANDLERS["LIST"] = saved
    row = replies(db, inbound_id)[0]
    assert "LIST is not available" in bodies(parsed(row))[0]
    assert parsed(row)["From"].addresses[0].addr_spec == "jobs@mailbot.localhost"


def test_the_recovery_rule_finds_commands_left_unanswered(ctx, db):
    from datetime import timedelta

    from mailbot.services.quarantine import quarantine

    waiting = routed_command(db, "HELP", "", message_id="<w@x>")
    answered = routed_command(db, "HELP", "", message_id="<n@x>")
    given_up = routed_command(db, "HELP", "", message_id="<g@x>")
    runner.run(ctx, answered)
    with db.session() as session:
        quarantine(session, kind="run_command", ref_id=given_up, stage="queue", reason="failed 12 times")
    with db.read() as session:
        pokes = runner.unanswered_commands(session, timedelta(0))
    assert pokes == [("run_command", waiting)]


def test_a_writing_handler_commits_together_with_its_reply(ctx, db):
    from datetime import date

    from sqlmodel import select

    from mailbot.commands import HANDLERS, Reply
    from mailbot.models import SenderDay

    def writes(ctx_, session, inbound, command):
        session.add(SenderDay(address=f"{command.argument}@example.org", day=date(2026, 1, 1)))
        session.flush()
        if command.argument == "fail":
            raise RuntimeError("handler bug")
        return Reply("help", {"addresses": [], "commands": [], "note": ""}, kind="help")

    saved = HANDLERS["LIST"]
    HANDLERS["LIST"] = writes
    try:
        ok = routed_command(db, "LIST ok", "", to="jobs@mailbot.localhost", message_id="<ok@x>")
        bad = routed_command(db, "LIST fail", "", to="jobs@mailbot.localhost", message_id="<bad@x>")
        assert len(runner.run(ctx, ok)) == 1
        with pytest.raises(RuntimeError):   # the actor retries, then quarantines
            runner.run(ctx, bad)
    finally:
        HANDLERS["LIST"] = saved
    with db.read() as session:
        addresses = session.exec(select(SenderDay.address)).all()
    assert addresses == ["ok@example.org"]
    assert len(replies(db, ok)) == 1 and replies(db, bad) == []


def _stored_and_routed(ctx, raw: bytes, sender: str = "coder@example.org"):
    from mailbot.mail import intake
    from mailbot.services import inbound

    inbound_id = intake.accept(ctx.db, raw, source="smtp", envelope_from=sender,
                               envelope_to=["lookup@mailbot.localhost"])
    return inbound_id, inbound.route_stored(ctx, inbound_id)


def test_the_row_the_router_hands_over_is_answered_as_the_stored_row_would_be(ctx, db):
    """The process_inbound actor passes the routed row and the parsed request
    on (issue 16); the reply is the one a fresh read of the row gives."""
    from tests.commands.support import raw_message

    handed_id, routed = _stored_and_routed(ctx, raw_message("LOOKUP E11.9", "", message_id="<handed@example.org>"))
    read_id, _ = _stored_and_routed(ctx, raw_message("LOOKUP E11.9", "", message_id="<read@example.org>"))
    assert routed.pokes == [("run_command", handed_id)] and routed.inbound.status == "processed"

    assert len(runner.run(ctx, handed_id, routed=routed.inbound, request=routed.message)) == 1
    assert len(runner.run(ctx, read_id)) == 1

    [handed], [read] = replies(db, handed_id), replies(db, read_id)
    assert (handed.kind, handed.subject, handed.to_addr, handed.from_addr) == \
        (read.kind, read.subject, read.to_addr, read.from_addr) == ("lookup", "Re: LOOKUP E11.9",
                                                                    "coder@example.org", "lookup@mailbot.localhost")
    assert parsed(handed)["In-Reply-To"] == "<handed@example.org>"
    assert bodies(parsed(handed))[0].split("E11.9", 1)[1][:200] == bodies(parsed(read))[0].split("E11.9", 1)[1][:200]
    with db.read() as session:
        route = session.get(InboundMessage, handed_id).route
    assert route[-1] == {"stage": "run_command", "result": "replied", "verb": "LOOKUP", "template": "lookup",
                         "outbound_id": handed.id}
    assert route == routed.inbound.route          # the handed-over copy follows what was committed


def test_a_handed_over_row_answered_already_gets_no_second_reply(ctx, db):
    from tests.commands.support import raw_message

    inbound_id, routed = _stored_and_routed(ctx, raw_message("HELP", "", message_id="<twice@example.org>"))
    assert len(runner.run(ctx, inbound_id, routed=routed.inbound, request=routed.message)) == 1
    assert runner.run(ctx, inbound_id, routed=routed.inbound, request=routed.message) == []
    assert len(replies(db, inbound_id)) == 1


def test_the_handed_over_request_is_checked_for_robot_headers_too(ctx, db):
    """A bug upstream must not make us answer a robot: the runner's own
    RFC 3834 check reads the request the router handed over."""
    from mailbot.models import InboundRow
    from tests.commands.support import raw_message

    raw = raw_message("HELP", "", message_id="<robot@example.org>", headers={"Precedence": "list"})
    inbound_id = routed_command(db, "HELP", "", message_id="<robot@example.org>", headers={"Precedence": "list"})
    with db.read() as session:
        stored = session.get(InboundMessage, inbound_id)
        row = InboundRow.from_mapping(stored.model_dump())
    from email import policy
    from email.parser import BytesParser

    assert runner.run(ctx, inbound_id, routed=row, request=BytesParser(policy=policy.default).parsebytes(raw)) == []
    assert replies(db, inbound_id) == []
    with db.read() as session:
        assert session.get(InboundMessage, inbound_id).route[-1] == {
            "stage": "run_command", "result": "not answered", "reason": "bulk or list mail"}
