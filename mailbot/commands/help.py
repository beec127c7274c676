"""HELP: how to use every address and command, with examples.

Also the answer to an empty or unrecognised command.  The text is data
(:data:`ADDRESSES`, :data:`COMMANDS`) so the email, the web page and the
tests read from one place.
"""

from __future__ import annotations

import difflib
from typing import Any

from mailbot.codes import lay
from mailbot.commands import VERBS, Command, Reply, handler
from mailbot.context import Context
from mailbot.models import InboundMessage

# (settings.service attribute holding the local part, what it is for)
ADDRESSES: tuple[tuple[str, str], ...] = (
    ("ask_address", "Coding questions in your own words. A certified coder reviews every answer "
                    "before it is sent; you get an acknowledgement first and the answer in the same thread."),
    ("lookup_address", "Automatic answers from the official code sets, within seconds: LOOKUP, SEARCH, "
                       "CHECK and HELP. No person reads these, so they contain code-set facts only."),
    ("jobs_address", "The medical-coding job board: subscribe to job digests or code-set update notices, "
                     "and manage your subscriptions."),
)

COMMANDS: tuple[dict[str, Any], ...] = (
    {"verb": "LOOKUP", "address": "lookup_address", "usage": "LOOKUP code [code ...] [on YYYY-MM-DD]",
     "summary": "One card per code: descriptor, billable or header, validity on the date, code-set version, "
                "ICD-10-CM notes, RVUs, NCCI and MUE facts, parent and child codes. "
                "Unknown codes get suggestions.",
     "examples": ["LOOKUP 50250 J1030 E11.22", "LOOKUP e1122 j-1030", "LOOKUP S52.521A on 2026-10-01"]},
    {"verb": "SEARCH", "address": "lookup_address", "usage": "SEARCH words",
     "summary": "The best-matching codes for a description in plain words, abbreviations or with typos.",
     "examples": ["SEARCH type 2 diabetes with kidney disease", "SEARCH renal cryoablation",
                  "SEARCH hcpcs methylprednisolone injection"]},
    {"verb": "CHECK", "address": "lookup_address", "usage": "CHECK code code [...] [hospital] [on YYYY-MM-DD]",
     "summary": "Can these codes go together? Validity of each code, NCCI pair edits with what the "
                "modifier indicator allows, and the MUE (most units per day) of each code.",
     "examples": ["CHECK 20610 99213", "CHECK 11042 97597 hospital", "CHECK 29881 29880 on 2026-01-15"]},
    {"verb": "HELP", "address": "lookup_address", "usage": "HELP",
     "summary": "This message.", "examples": ["HELP"]},
    {"verb": "SUBSCRIBE", "address": "jobs_address",
     "usage": "SUBSCRIBE JOBS words [daily|weekly]  /  SUBSCRIBE UPDATES [codes or ranges]",
     "summary": "Job digests matching your words (credential, setting, place, remote), or a notice when the "
                "code sets change for the codes you name. We send a confirmation request first; reply to it "
                "to start.",
     "examples": ["SUBSCRIBE JOBS remote CPC weekly", "SUBSCRIBE remote CPC jobs in Texas, daily",
                  "SUBSCRIBE UPDATES E08-E13"]},
    {"verb": "CONFIRM", "address": "jobs_address", "usage": "CONFIRM token",
     "summary": "Just reply to the confirmation request: its subject carries the CONFIRM line.",
     "examples": ["(reply to the confirmation request)"]},
    {"verb": "LIST", "address": "jobs_address", "usage": "LIST",
     "summary": "Your subscriptions, their numbers (S-12) and settings.", "examples": ["LIST"]},
    {"verb": "PAUSE", "address": "jobs_address", "usage": "PAUSE [S-12 ...]",
     "summary": "Stop digests for a while without losing your settings (all, or the ones named).",
     "examples": ["PAUSE", "PAUSE S-12"]},
    {"verb": "RESUME", "address": "jobs_address", "usage": "RESUME [S-12 ...]",
     "summary": "Start paused digests again.", "examples": ["RESUME"]},
    {"verb": "UNSUBSCRIBE", "address": "jobs_address", "usage": "UNSUBSCRIBE [S-12 ...]",
     "summary": "Stop subscriptions (all, or the ones named); every digest also has a one-click "
                "unsubscribe link.",
     "examples": ["UNSUBSCRIBE", "UNSUBSCRIBE S-12"]},
    {"verb": "POST JOB", "address": "jobs_address", "usage": "POST JOB, then Field: value lines",
     "summary": "Employers on the allow-list can post an opening; it is published after review.",
     "examples": ["POST JOB\nTitle: Outpatient coder (CPC)\nLocation: Remote\nApply: https://..."]},
)


def guess_verb(text: str) -> str | None:
    """A command the sender probably meant (``LOKUP`` -> ``LOOKUP``)."""
    first = (text.strip().split() or [""])[0].upper().rstrip(":")
    if len(first) < 3:
        return None
    close = difflib.get_close_matches(first, [v for v in VERBS if " " not in v], n=1, cutoff=0.75)
    return close[0] if close else None


def help_context(ctx: Context) -> dict[str, Any]:
    service = ctx.settings.service
    addresses = [{"address": ctx.settings.service_address(getattr(service, attr)), "purpose": purpose}
                 for attr, purpose in ADDRESSES]
    commands = [{**c, "address": ctx.settings.service_address(getattr(service, c["address"]))} for c in COMMANDS]
    # data whose licence asks to be acknowledged where the service is described
    sources = [text for text in (lay.acknowledgement(),) if text]
    return {"addresses": addresses, "commands": commands, "sources": sources}


def help_reply(ctx: Context, command: Command, note: str = "") -> Reply:
    """The HELP reply; ``note`` says why the sender gets help instead of an answer."""
    if not note and command.verb == "HELP" and command.found_in == "recipient" and command.body.strip():
        note = "We did not find a command in your message."
    if note:
        guess = guess_verb(command.body or command.argument)
        if guess:
            note += f" Did you mean {guess}?"
    return Reply("help", {**help_context(ctx), "note": note}, kind="help")


@handler("HELP")
def answer_help(ctx: Context, session, inbound: InboundMessage, command: Command) -> Reply:
    return help_reply(ctx, command)
