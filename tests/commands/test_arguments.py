"""Reading command arguments: codes as people type them, dates, settings, limits."""

from __future__ import annotations

from datetime import date

import pytest

from mailbot.commands import Command
from mailbot.commands.arguments import CommandError, parse_date, read_codes, read_search, read_words


def codes(argument: str, body: str = "", max_codes: int = 20):
    return read_codes(Command("LOOKUP", argument, body=body), max_codes=max_codes, verb_examples=["LOOKUP 99213"])


def test_codes_are_split_on_spaces_commas_and_semicolons_and_deduplicated():
    request = codes("50250, J-1030;e11.22  E11.22 50250")
    assert request.codes == ["50250", "J-1030", "e11.22"]


def test_a_date_of_service_and_a_setting_are_recognised():
    request = codes("20610 99213 hospital on 2026-10-01")
    assert request.codes == ["20610", "99213"]
    assert request.on == date(2026, 10, 1) and request.setting == "hospital"
    assert codes("99213 DOS 10/01/2026").on == date(2026, 10, 1)


def test_words_are_left_out_and_reported_but_modifiers_are_kept():
    request = codes("please 99213 GA and RT thanks")
    assert request.codes == ["99213", "GA", "RT"]
    assert request.ignored == ["please", "and", "thanks"]


def test_codes_under_a_bare_subject_command_come_from_the_body():
    request = codes("", body="Hi,\nwhat about J1030 and E11.22 for my patient in 90210?\nThanks")
    assert request.codes == ["J1030", "E11.22"]


def test_no_codes_is_an_error_with_examples():
    with pytest.raises(CommandError) as err:
        codes("hello there")
    assert "no codes" in err.value.problem and err.value.examples == ["LOOKUP 99213"]


def test_more_codes_than_the_limit_is_an_error_naming_the_limit():
    with pytest.raises(CommandError) as err:
        codes(" ".join(str(99200 + i) for i in range(6)), max_codes=5)
    assert "6 codes" in err.value.problem and "at most 5" in err.value.problem


def test_an_impossible_date_is_an_error():
    with pytest.raises(CommandError):
        parse_date("2026-02-30")
    assert parse_date("99213") is None


def test_search_words_come_from_the_line_or_the_body_and_are_limited():
    assert read_words(Command("SEARCH", "renal  cryoablation"), max_words=5, verb_examples=[]) == "renal cryoablation"
    assert read_words(Command("SEARCH", "", body="\nknee injection\nthanks"), max_words=5, verb_examples=[]) == "knee injection"
    # too many words are trimmed, filler first, not refused (issue 15)
    request = read_search(Command("SEARCH", "please the code for left knee pain with swelling today"), max_words=5,
                          verb_examples=[])
    assert request.query == "left knee pain with swelling" and request.left_out == ["please", "the", "code", "for",
                                                                                    "today"]
    # "Subject: SEARCH" with the query (or "SEARCH query") in the body never searches the word SEARCH
    assert read_words(Command("SEARCH", "", body="SEARCH knee injection\nthanks"), max_words=5,
                      verb_examples=[]) == "knee injection"
    assert read_words(Command("SEARCH", "", body="search: knee injection"), max_words=5,
                      verb_examples=[]) == "knee injection"
    dated = read_search(Command("SEARCH", "low back pain on 2021-06-01"), max_words=5, verb_examples=[])
    assert dated.query == "low back pain" and dated.on == date(2021, 6, 1)
    with pytest.raises(CommandError):
        read_words(Command("SEARCH", ""), max_words=5, verb_examples=[])


def test_sender_text_echoed_back_is_kept_short():
    request = codes("99213 " + " ".join(f"spam{chr(97 + i % 26)}word" for i in range(30)) + " " + "x" * 200)
    assert len(request.ignored) == 10 and all(len(w) <= 30 for w in request.ignored)
    with pytest.raises(CommandError) as err:
        codes("buy cheap pills at our shop " * 20)
    assert len(err.value.problem) < 120
    with pytest.raises(CommandError):
        read_words(Command("SEARCH", "a" * 41), max_words=5, verb_examples=[])


def test_the_reply_subject_is_one_short_line():
    from mailbot.commands.runner import reply_subject

    assert reply_subject("LOOKUP 99213\r\nBcc: victim@example.org", None) == "Re: LOOKUP 99213 Bcc: victim@example.org"
    assert len(reply_subject("LOOKUP " + "9" * 500, None)) <= 124
    assert reply_subject("RE: LOOKUP 99213", None) == "RE: LOOKUP 99213"
    assert reply_subject("", Command("HELP", "")) == "Re: HELP"
