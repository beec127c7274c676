"""LOOKUP: one card per code, straight from the code knowledge base.

``LOOKUP 50250 J1030 E11.22 [on 2026-10-01]`` -- the codes in the forms people
type; :func:`mailbot.codes.lookup.lookup` canonicalises and verifies each one,
so every code in the reply exists in an imported code set (or is shown as
not found, with suggestions) and cites that set's version.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session

from mailbot.codes.history import when_text
from mailbot.codes.lookup import lookup
from mailbot.commands import Command, Reply, handler
from mailbot.commands.arguments import read_codes
from mailbot.commands.cards import card_view
from mailbot.context import Context
from mailbot.models import InboundMessage

EXAMPLES = ["LOOKUP 50250 J1030 E11.22", "LOOKUP e1122 j-1030", "LOOKUP S52.521A on 2026-10-01"]


def today() -> date:
    return datetime.now(UTC).date()


def lookup_cards(session: Session, codes: list[str], on: date | None = None) -> list[dict[str, Any]]:
    """Card views for ``codes`` on ``on``; used by the email and the reviewer
    web page alike.  Without a date the cards use today and say so."""
    when = on or today()
    return [card_view(card, when) for card in lookup(session, codes, on=on)]


def on_text(on: date | None) -> str:
    """The date a reply speaks about: ``2021-06-01`` or ``2026-12-02 (today; no date of service given)``."""
    return when_text(on or today(), on is None)


@handler("LOOKUP")
def answer_lookup(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    request = read_codes(command, max_codes=ctx.settings.commands.max_codes, verb_examples=EXAMPLES)
    cards = lookup_cards(session, request.codes, request.on)
    return Reply("lookup", {
        "cards": cards, "on": on_text(request.on), "ignored": request.ignored,
        "found": sum(1 for c in cards if c["found"]), "codes": [c["code"] for c in cards],
    }, kind="lookup")
