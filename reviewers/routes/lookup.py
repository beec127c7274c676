"""Code lookup for reviewers: the same LOOKUP / SEARCH / CHECK answers as the
automatic mail commands, on one page, with the same cards.

``GET /lookup?q=E11.22 J1030`` shows a card per code; ``q`` made of words
searches; ``mode=check`` checks the codes together (NCCI pairs, MUEs).  The
card partials are the email ones (``templates/email/_partials/card.html``);
their stylesheet is served from here, scoped to the page's card area so it
cannot restyle the rest of the app.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mailbot.codes.normalize import candidates
from mailbot.commands import Command
from mailbot.commands.arguments import CommandError, read_codes
from mailbot.commands.check import check_view
from mailbot.commands.lookup import lookup_cards, today
from mailbot.commands.search import search_results
from mailbot.models import Reviewer
from mailbot.templating import environment
from reviewers.auth import require_reviewer
from reviewers.pages import render

router = APIRouter()

MODES = ("auto", "lookup", "search", "check")
SCOPE = ".cmd-cards"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# The mail commands' syntax works here too: "CHECK 20610 99213", "LOOKUP E11.22",
# "SEARCH renal cryoablation" -- the verb picks the mode and is not searched for.
_VERB = re.compile(r"^\s*(lookup|search|check)\b[\s:]*(.*)$", re.I | re.S)


def split_verb(q: str) -> tuple[str | None, str]:
    """``("check", "20610 99213")`` for ``"CHECK 20610 99213"``; ``(None, q)`` without a verb."""
    match = _VERB.match(q)
    return (match.group(1).lower(), match.group(2).strip()) if match else (None, q)


def _mode_for(q: str, mode: str) -> str:
    """``auto``: codes (and a date) -> lookup; anything with words -> search."""
    if mode != "auto":
        return mode
    tokens = [t for t in re.split(r"[\s,;]+", q) if t]
    return "lookup" if tokens and all(candidates(t) or _DATE.match(t) for t in tokens) else "search"


@router.get("/lookup")
def lookup_page(request: Request, q: str = "", mode: str = "auto", on: str = "", setting: str = "practitioner",
                reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    ctx = request.app.state.ctx
    q = q.strip()[:500]
    mode = mode if mode in MODES else "auto"
    verb, rest = split_verb(q)
    if verb and rest:
        mode, q = verb, rest
    setting = "hospital" if setting == "hospital" else "practitioner"
    values: dict = {"q": q, "mode": mode, "on": on, "setting": setting, "used": "", "problem": "",
                    "cards": [], "results": [], "check": None, "when": today().isoformat()}
    if q:
        used = _mode_for(q, mode)
        values["used"] = used
        try:
            when = date.fromisoformat(on) if on else None
            values["when"] = (when or today()).isoformat()
            with ctx.db.read() as session:
                if used == "search":
                    values["system"], _, values["results"] = search_results(session, q, ctx.settings.commands.search_limit,
                                                                            when)
                else:
                    request_ = read_codes(Command(used.upper(), q), max_codes=ctx.settings.commands.max_codes,
                                          verb_examples=[])
                    when = when or request_.on
                    values["when"] = (when or today()).isoformat()
                    if used == "check":
                        values["check"] = check_view(session, request_.codes, when, setting)
                    else:
                        values["cards"] = lookup_cards(session, request_.codes, when)
        except ValueError:
            values["problem"] = f"{on!r} is not a date; use YYYY-MM-DD."
        except CommandError as exc:
            values["problem"] = " ".join(x for x in (exc.problem, exc.hint) if x)
    values.setdefault("system", None)
    return render(request, "web/lookup.html", values, title="Code lookup")


@router.get("/lookup/cards.css")
def cards_css(reviewer: Reviewer = Depends(require_reviewer)) -> Response:
    return Response(scoped_css(), media_type="text/css", headers={"Cache-Control": "private, max-age=300"})


@lru_cache(maxsize=1)
def scoped_css() -> str:
    """The email card stylesheet with every selector prefixed by :data:`SCOPE`."""
    source = environment().loader.get_source(environment(), "email/_partials/card.css")[0]
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    out = []
    for rule in re.findall(r"([^{}]+)\{([^{}]*)\}", source):
        selectors = ", ".join(f"{SCOPE} {s.strip()}" for s in rule[0].split(",") if s.strip())
        out.append(f"{selectors} {{{rule[1]}}}")
    return "\n".join(out) + "\n"
