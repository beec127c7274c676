"""Generated hostile commands: the command parser and every handler's
argument reading either understand a request or say what is wrong with it
(``CommandError``, worded for the sender) -- they never crash -- and the full
runner answers every generated command with exactly one reply, on both
databases, without echoing more than a short piece of the sender's text.

``tests/commands/test_arguments.py`` holds the worked examples; this file
throws generated text at the same functions.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from mailbot.codes.extract import find_codes
from mailbot.codes.normalize import normalize
from mailbot.commands import VERBS, Command, parse_command, runner
from mailbot.commands.arguments import CommandError, read_codes, read_words
from mailbot.commands.jobs import parse_post
from mailbot.jobs.criteria import parse_request
from mailbot.mail import intake
from mailbot.models import InboundMessage, OutboundMessage
from mailbot.services import inbound
from tests.hostile import tally
from tests.hostile.conftest import fuzz_settings

PARSER_EXAMPLES = 5000
RUNNER_EXAMPLES = 300            # per database backend

CODE_LIKE = ["99213", "99213-25", "e11.22", "E1122", "J-1030", "0001F", "0042T", "A0000", "Z99.89", "-25",
             "LT", "XS", "S52.521A", "E11.*", "12345-6789", "1999", "$99.99", "(555) 010-9999", "2026-10-01",
             "13/45/2026", "02/30/2026", "9999-99-99", "on", "DOS", "hospital", "facility", "J" * 45,
             "'; DROP TABLE code; --", "%", "_", "\\", "<script>", "\x00", "\u202e", "ＬＯＯＫＵＰ", "٩٩٢١٣"]
JOB_WORDS = ["JOBS", "UPDATES", "code set updates", "remote", "onsite", "hybrid", "CPC", "CCS", "RHIT", "Texas",
             "in", "New York", "daily", "weekly", "E08-E13", "cardiology", "1-3 years", "$80,000", "J-7"]
POST_LINES = ["Title: Coder", "Employer: <b>Acme</b>", "Apply: mailto:x@example.org", "Apply: javascript:alert(1)",
              "Salary: -5", "Salary: 99999999999999999999", "Expires: 2026-02-30", "City: \x00", "Description:"]

token = st.one_of(st.sampled_from(CODE_LIKE), st.sampled_from(JOB_WORDS),
                  st.text(max_size=12), st.from_regex(r"[A-Za-z]?\d{1,6}(\.\d{0,4})?(-\w{1,3})?", fullmatch=True))
words = st.lists(token, max_size=30).map(" ".join)
separators = st.sampled_from([" ", ", ", ";", "\n", "\t", " -- ", ""])


@st.composite
def command_text(draw) -> tuple[str, str]:
    verb = draw(st.one_of(st.sampled_from(VERBS), st.sampled_from(["lookup", "Look up", "POST  JOB", "HELPME", "re: fwd: CHECK", ""])))
    sep = draw(separators)
    subject = draw(st.one_of(st.just(verb + sep + draw(words)), st.text(max_size=80)))
    body = draw(st.lists(st.one_of(words, st.sampled_from(POST_LINES), st.text(max_size=80)), max_size=8))
    return subject, "\n".join(body)


@fuzz_settings(PARSER_EXAMPLES)
@given(message=command_text(), local=st.sampled_from(["", "ask", "lookup", "jobs", "lookup+x", "JOBS"]))
def test_generated_commands_are_understood_or_refused_with_a_reason(message, local):
    tally.count("fuzz.command_parser")
    subject, text = message
    command = parse_command(subject, text, local)
    if command is None:
        return
    assert command.verb in VERBS
    examples = ["LOOKUP 99213"]
    for reader in (lambda c: read_codes(c, max_codes=20, verb_examples=examples),
                   lambda c: read_words(c, max_words=12, verb_examples=examples)):
        try:
            reader(command)
        except CommandError as exc:
            assert exc.problem.strip()
            # Text echoed back is bounded: no reflector for a forged sender's message.
            assert len(exc.problem) < 200, exc.problem
            tally.count("outcome.command_parser.refused")
    request = parse_request(command.argument + " " + command.body)
    assert request.kind in ("jobs", "updates") and request.frequency in ("daily", "weekly")
    assert isinstance(parse_post(command.body), dict)
    for code in find_codes(command.argument + "\n" + command.body):
        assert normalize(code) is not None, code


def _to(local: str) -> str:
    return f"{local}@mailbot.localhost"


def test_generated_commands_through_the_runner_get_exactly_one_reply(ctx, codes_db, db, db_backend):
    """Intake -> routing -> the runner with every handler: one reply per
    command (or a recorded reason for silence), never an exception."""
    replies: dict[str, int] = {}

    @fuzz_settings(RUNNER_EXAMPLES)
    @given(message=command_text(), local=st.sampled_from(["ask", "lookup", "jobs"]), n=st.integers(0, 10**9))
    def one(message, local, n):
        subject, text = message
        raw = (f"From: Fuzz <fuzz{n % 7}@example.org>\r\nTo: {_to(local)}\r\nSubject: {subject}\r\n"
               f"Message-ID: <cmd-{n}-{len(text)}@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
               f"{text}\r\n").encode("utf-8", "surrogatepass")
        inbound_id = intake.accept(db, raw, source="smtp", envelope_from=f"fuzz{n % 7}@example.org",
                                   envelope_to=[_to(local)])
        pokes = inbound.process(ctx, inbound_id)
        for poke in pokes:
            if poke.actor == "run_command":
                runner.run(ctx, poke.id)
                assert runner.run(ctx, poke.id) == []           # a rerun sends nothing more
        with db.read() as session:
            row = session.get(InboundMessage, inbound_id)
            sent = session.exec(select(OutboundMessage).where(OutboundMessage.inbound_id == inbound_id)).all()
        assert row.status in ("processed", "dropped", "quarantined"), row.status
        assert len(sent) <= 1
        if row.action == "command":
            stage = [s for s in row.route if s.get("stage") == "run_command"]
            assert sent or stage, row.route
            for out in sent:
                assert b"\r\nBcc:" not in out.raw.split(b"\r\n\r\n", 1)[0]
                kind = out.kind
                replies[kind] = replies.get(kind, 0) + 1
        tally.count(f"fuzz.command_runner[{db_backend}]")

    # The daily cap would silence a busy fuzz sender after 10 replies.
    ctx.settings.guards.daily_reply_cap = 10_000
    one()
    for kind, n in replies.items():
        tally.count(f"outcome.command_runner.{kind}", n)
    assert sum(replies.values()) > RUNNER_EXAMPLES // 4
