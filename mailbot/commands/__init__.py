"""Mail commands: ``LOOKUP 50250 J1030``, ``SEARCH renal cryoablation``,
``CHECK 20610 99213``, ``HELP``, ``SUBSCRIBE JOBS remote CPC weekly`` ...

A command is found (in this order) in the subject, in the first non-empty
line of the new text, or implied by the recipient (``lookup@`` defaults to
``LOOKUP`` when the text starts with codes, else ``HELP``).  Routing is data:
:data:`HANDLERS` maps each verb to the function that answers it; modules
register with :func:`handler`.  Handlers answer with knowledge-base facts only
-- never LLM text, since no human reviews these replies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Verbs people may type, longest first so "POST JOB" wins over "POST".
VERBS = (
    "POST JOB", "UNSUBSCRIBE", "SUBSCRIBE", "CONFIRM", "LOOKUP", "SEARCH",
    "CHECK", "PAUSE", "RESUME", "LIST", "HELP",
)
# Verbs whose arguments may be on the first body line when the subject holds only the verb.
ARGUMENTS_FROM_BODY = frozenset({"SUBSCRIBE", "LOOKUP", "CHECK", "SEARCH"})
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw|sv|wg)\s*:\s*)+", re.I)
_VERB = re.compile(r"^\s*(" + "|".join(v.replace(" ", r"\s+") for v in VERBS) + r")\b[:\s]*(.*)$", re.I | re.S)


@dataclass
class Command:
    verb: str                 # canonical, upper case, e.g. "POST JOB"
    argument: str             # the rest of the line, stripped
    body: str = ""            # the rest of the message after the command line
    found_in: str = "subject"  # subject | body | recipient


@dataclass
class Reply:
    """What a handler answers: an email template and its context."""

    template: str                          # templates/email/<template>/
    context: dict[str, Any] = field(default_factory=dict)
    kind: str = "command"                  # OutboundMessage.kind


Handler = Callable[..., Reply]
HANDLERS: dict[str, Handler] = {}


def handler(*verbs: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the answer to ``verbs``."""

    def register(fn: Handler) -> Handler:
        for verb in verbs:
            HANDLERS[verb.upper()] = fn
        return fn

    return register


def _match(text: str) -> tuple[str, str] | None:
    m = _VERB.match(text)
    if not m:
        return None
    return " ".join(m.group(1).upper().split()), m.group(2).strip()


def parse_command(subject: str, text: str, recipient_local: str = "") -> Command | None:
    """Find the command in a message, or ``None`` for a plain question."""
    lines = [line for line in text.splitlines() if line.strip()]
    found = _match(_SUBJECT_PREFIX.sub("", subject or ""))
    if found:
        rest = found[1].splitlines()[0] if found[1] else ""
        if not rest.strip() and found[0] in ARGUMENTS_FROM_BODY and lines:
            # "Subject: SUBSCRIBE" with "remote CPC jobs in Texas, daily" as the
            # first line of the body: the body line holds the arguments.
            first = _match(lines[0])
            rest = first[1] if first and first[0] == found[0] else lines[0]
            return Command(found[0], rest.strip(), body="\n".join(lines[1:]), found_in="subject")
        return Command(found[0], rest.strip(), body=text, found_in="subject")
    if lines:
        found = _match(lines[0])
        if found:
            return Command(found[0], found[1], body="\n".join(lines[1:]), found_in="body")
    base = recipient_local.split("+", 1)[0].lower()
    if base == "lookup":
        if lines and re.match(r"^\s*[A-Za-z]?\d", lines[0]):
            return Command("LOOKUP", lines[0].strip(), body="\n".join(lines[1:]), found_in="recipient")
        return Command("HELP", "", body=text, found_in="recipient")
    if base == "jobs":
        # A plain line to jobs@ ("remote CPC jobs in Texas, daily") asks for a
        # subscription; the SUBSCRIBE handler says so when it cannot tell what.
        first = _SUBJECT_PREFIX.sub("", subject or "").strip() or (lines[0].strip() if lines else "")
        if first:
            return Command("SUBSCRIBE", first, body=text, found_in="recipient")
        return Command("HELP", "", body=text, found_in="recipient")
    return None


# Handlers register themselves with @handler when imported.
from mailbot.commands import lookup, search, check, help  # noqa: E402,F401
from mailbot.commands import jobs  # noqa: E402,F401
