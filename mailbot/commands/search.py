"""SEARCH: the best-matching codes for a description in plain words.

``SEARCH knee pain on 2021-06-01`` searches the codes valid on that date of
service.  Each hit is looked up again (for that date) before it is shown, so the reply lists only
codes that exist in the imported sets, says whether each is billable today,
and cites the code-set version -- the same guarantee LOOKUP gives.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from mailbot.codes.search import SearchError, search
from mailbot.commands import Command, Reply, handler
from mailbot.commands.arguments import DATE_WORDS, CommandError, parse_date, read_search, shorten
from mailbot.commands.cards import SYSTEM_LABELS
from mailbot.commands.lookup import lookup_cards, today
from mailbot.context import Context
from mailbot.models import InboundMessage

EXAMPLES = ["SEARCH type 2 diabetes with kidney disease", "SEARCH renal cryoablation",
            "SEARCH hcpcs methylprednisolone injection", "SEARCH low back pain on 2021-06-01"]
# A first word naming a code set narrows the search to it.
SYSTEM_WORDS = {"icd10cm": "icd10cm", "icd10": "icd10cm", "icd-10": "icd10cm", "icd-10-cm": "icd10cm",
                "icd": "icd10cm", "diagnosis": "icd10cm", "hcpcs": "hcpcs", "cpt": "cpt"}


# First words naming a code set we do not hold: refused with a clear answer rather than searched as words.
OTHER_SYSTEMS = {"snomed": "SNOMED CT", "snomed-ct": "SNOMED CT", "snomedct": "SNOMED CT", "icd9": "ICD-9-CM",
                 "icd-9": "ICD-9-CM", "icd9cm": "ICD-9-CM", "icd-9-cm": "ICD-9-CM", "icd11": "ICD-11",
                 "icd-11": "ICD-11", "loinc": "LOINC", "rxnorm": "RxNorm", "cdt": "CDT (dental)"}


def split_system(query: str) -> tuple[str | None, str]:
    """``"hcpcs methylprednisolone"`` -> ``("hcpcs", "methylprednisolone")``."""
    first, _, rest = query.partition(" ")
    system = SYSTEM_WORDS.get(first.lower().rstrip(":"))
    return (system, rest.strip()) if system and rest.strip() else (None, query)


def split_date(query: str) -> tuple[str, date | None]:
    """``"low back pain on 2021-06-01"`` -> ``("low back pain", 2021-06-01)``: the
    ``on DATE`` (or ``DOS DATE``) qualifier, wherever it stands."""
    words = query.split()
    for i, word in enumerate(words):
        when = parse_date(word)
        if when is not None:
            start = i - 1 if i > 0 and words[i - 1].lower() in DATE_WORDS else i
            return " ".join(words[:start] + words[i + 1:]), when
    return query, None


def search_results(session: Session, query: str, limit: int,
                   on: date | None = None) -> tuple[str | None, str, list[dict[str, Any]]]:
    """Verified search results: (system filter, words searched, [{card, score}]);
    used by the email and the reviewer web page alike.  A date of service
    (``on`` or an ``on DATE`` qualifier in the query) is passed to the search
    and to the verification of every hit; without one, today is used and the
    cards say so."""
    query, asked = split_date(query)
    given = on or asked
    system, words = split_system(query)
    other = OTHER_SYSTEMS.get(query.partition(" ")[0].lower().rstrip(":"))
    if other:
        raise CommandError(f"We cannot search {other}: the code sets here are ICD-10-CM, HCPCS Level II and "
                           "CPT (when licensed). Leave the code set out to search them all, or name one of them.",
                           examples=EXAMPLES)
    on = given or today()
    try:
        hits = search(session, words, system=system, limit=limit, on=on)
    except SearchError as exc:
        raise CommandError(f"We cannot search for {shorten(query, 80)!r}: {exc}.", examples=EXAMPLES) from None
    cards = lookup_cards(session, [hit.code for hit in hits], given) if hits else []
    results = []
    for hit, card in zip(hits, cards):
        if card["found"]:  # never show a code the lookup cannot confirm
            results.append({"card": card, "score": round(float(hit.score), 3)})
    return system, words, results


@handler("SEARCH")
def answer_search(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    settings = ctx.settings.commands
    request = read_search(command, max_words=settings.max_search_words, verb_examples=EXAMPLES)
    system, words, results = search_results(session, request.query, settings.search_limit, request.on)
    on = request.on or today()
    top = [r["card"]["code"] for r in results[:5]]
    return Reply("search", {
        "query": words, "system": SYSTEM_LABELS.get(system, system) if system else None,
        "results": results, "on": on.isoformat(), "date_given": request.on is not None,
        "left_out": request.left_out, "max_words": settings.max_search_words,
        "lookup_hint": ("LOOKUP " + " ".join(top) + (f" on {on.isoformat()}" if request.on else "")) if top else "",
        "examples": EXAMPLES,
    }, kind="search")
