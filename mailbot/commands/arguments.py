"""Reading a command's arguments: codes, a date of service, a setting, words.

People type ``LOOKUP 50250, J-1030 e11.22 on 2026-10-01`` or put the codes on
the lines under a ``LOOKUP`` subject.  These helpers turn that into a clean
request and raise :class:`CommandError` -- worded for the sender, with a hint
and examples -- when it cannot be understood or asks for too much.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from mailbot.commands import Command


class CommandError(Exception):
    """A request we understood well enough to say what is wrong with it."""

    def __init__(self, problem: str, *, hint: str = "", examples: list[str] | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint
        self.examples = examples or []


@dataclass
class CodeRequest:
    codes: list[str]                       # as typed, de-duplicated, order kept
    on: date | None = None                 # date of service, when given
    setting: str = "practitioner"          # NCCI/MUE table for CHECK
    ignored: list[str] = field(default_factory=list)  # words that are not codes


_SPLIT = re.compile(r"[\s,;]+")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# Words that introduce a date ("on", "DOS") or fill a sentence; never codes.
_DATE_WORDS = DATE_WORDS = {"on", "dos", "date", "for", "at", "dated"}
_SETTINGS = {"hospital": "hospital", "facility": "hospital", "outpatient": "hospital", "opps": "hospital",
             "practitioner": "practitioner", "physician": "practitioner", "professional": "practitioner"}
# Level II modifiers are two letters (GA, RT, XS); everything else code-like has a digit.
_MODIFIER = re.compile(r"^[A-Za-z]{2}$")
_NOT_MODIFIERS = {"on", "at", "is", "it", "in", "of", "or", "to", "an", "as", "be", "by", "do", "me", "my", "no",
                  "so", "up", "us", "we", "hi", "ok", "pm", "am"}


# Sender text echoed into a reply is kept short: a forged sender must not be
# able to use our replies to carry its own message to someone else.
MAX_ECHOED_WORDS = 10


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_date(token: str) -> date | None:
    """``2026-10-01`` or ``10/01/2026`` -> date; None when not date-shaped.
    Raises CommandError for a date-shaped token that is no real date."""
    token = token.strip().rstrip(".")
    m = _ISO.match(token)
    parts = (m.group(1), m.group(2), m.group(3)) if m else None
    if parts is None:
        m = _US.match(token)
        parts = (m.group(3), m.group(1), m.group(2)) if m else None
    if parts is None:
        return None
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        raise CommandError(f"{token!r} is not a real date.", hint="Write dates as YYYY-MM-DD, e.g. 2026-10-01.") from None


def _looks_like_code(token: str) -> bool:
    if any(ch.isdigit() for ch in token):
        return True
    return bool(_MODIFIER.match(token)) and token.lower() not in _NOT_MODIFIERS


def read_codes(command: Command, *, max_codes: int, verb_examples: list[str]) -> CodeRequest:
    """The codes (and optional date and setting) of a LOOKUP or CHECK.

    Codes come from the command line; when it holds none, from the codes the
    knowledge base finds in the rest of the message."""
    request = CodeRequest(codes=[])
    seen: set[str] = set()
    for raw in _SPLIT.split(command.argument):
        token = raw.strip().strip(".()[]<>\"'")
        if not token:
            continue
        when = parse_date(token)
        if when is not None:
            request.on = when
            continue
        lowered = token.lower()
        if lowered in _SETTINGS:
            request.setting = _SETTINGS[lowered]
            continue
        if lowered in _DATE_WORDS:
            continue
        if not _looks_like_code(token):
            if len(request.ignored) < MAX_ECHOED_WORDS:
                request.ignored.append(shorten(token, 30))
            continue
        if token.upper() not in seen:
            seen.add(token.upper())
            request.codes.append(token)
    if not request.codes and command.body.strip():
        from mailbot.codes.extract import find_codes

        for code in find_codes(command.body):
            if code.upper() not in seen:
                seen.add(code.upper())
                request.codes.append(code)
    if not request.codes:
        what = f" in {shorten(command.argument, 80)!r}" if command.argument else ""
        raise CommandError(f"We found no codes{what}.",
                           hint=f"Put the codes right after {command.verb}, separated by spaces.",
                           examples=verb_examples)
    if len(request.codes) > max_codes:
        raise CommandError(
            f"You asked about {len(request.codes)} codes; one message can hold at most {max_codes}.",
            hint=f"Send the first {max_codes} in this message and the rest in another.",
            examples=verb_examples)
    return request


@dataclass
class SearchRequest:
    query: str                             # the words searched
    on: date | None = None                 # date of service ("on 2021-06-01")
    left_out: list[str] = field(default_factory=list)  # words dropped to keep within the limit


# Words that say nothing about a code; dropped first when a search is too long.
_FILLER = {"a", "an", "the", "of", "and", "or", "for", "to", "in", "at", "by", "from", "is", "are", "was", "it",
           "this", "that", "please", "thanks", "thank", "you", "hi", "hello", "need", "code", "codes", "icd",
           "what", "which", "the", "my", "me", "i", "we", "patient", "pt", "looking", "help", "search", "find"}


def read_words(command: Command, *, max_words: int, verb_examples: list[str]) -> str:
    """The query of a SEARCH (see :func:`read_search`), as plain words."""
    return read_search(command, max_words=max_words, verb_examples=verb_examples).query


def read_search(command: Command, *, max_words: int, verb_examples: list[str]) -> SearchRequest:
    """The query of a SEARCH: the command line, else the first line below it.

    ``on DATE`` / ``DOS DATE`` gives the date of service.  A query longer than
    ``max_words`` is trimmed, not refused: filler words go first, then the
    words past the limit, and the reply names what was left out."""
    query = command.argument.strip()
    if not query:
        lines = [line.strip() for line in command.body.splitlines() if line.strip()]
        query = lines[0] if lines else ""
        # "Subject: SEARCH" with "SEARCH knee pain" (or "search: knee pain") as the body's first line
        query = re.sub(r"^\s*search\b[:\s]*", "", query, flags=re.I)
    words = query.split()
    request = SearchRequest(query="")
    kept: list[str] = []
    skip = False
    for i, word in enumerate(words):
        if skip:
            skip = False
            continue
        when = parse_date(word)
        if when is None and word.lower() in ("on", "dos") and i + 1 < len(words):
            when = parse_date(words[i + 1])
            skip = when is not None
        if when is not None:
            request.on = when
            continue
        kept.append(word)
    words = kept
    if not words:
        raise CommandError("SEARCH needs some words to look for.",
                           hint="Describe the diagnosis, procedure or supply in a few words.",
                           examples=verb_examples)
    if any(len(word) > 40 for word in words):
        raise CommandError("One of the words in your search is longer than 40 letters.",
                           hint="Search with ordinary words or the start of a code.", examples=verb_examples)
    if len(words) > max_words:
        meaningful = [w for w in words if w.lower().strip(",.;:!?") not in _FILLER]
        kept = meaningful[:max_words]
        dropped = list(words)
        for w in kept:
            dropped.remove(w)
        request.left_out = [shorten(w, 30) for w in dropped][:MAX_ECHOED_WORDS]
        words = kept or words[:max_words]
    request.query = " ".join(words)
    return request
