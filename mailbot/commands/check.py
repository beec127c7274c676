"""CHECK: can these codes be reported together?

``CHECK 20610 99213 [hospital] [on 2026-01-15]`` -- validity of each code on
the date (the same verified cards as LOOKUP, with the code-set version), the
NCCI procedure-to-procedure edits among them (column 1 / column 2, the
modifier indicator and what it allows, the rationale) and the MUE of each
code, from :func:`mailbot.codes.edits.check`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from mailbot.codes.catalogue import SETTING_LABELS, Catalogue
from mailbot.codes.edits import CheckError, check
from mailbot.commands import Command, Reply, handler
from mailbot.commands.arguments import CommandError, read_codes
from mailbot.commands.cards import _text
from mailbot.commands.lookup import lookup_cards, on_text, today
from mailbot.context import Context
from mailbot.models import InboundMessage

EXAMPLES = ["CHECK 20610 99213", "CHECK 11042 97597 hospital", "CHECK 29881 29880 on 2026-01-15"]

# CMS's definitions of the NCCI modifier indicator (NCCI Policy Manual);
# used when the knowledge base gives the indicator without its meaning.
MODIFIER_INDICATORS = {
    "0": "Not allowed: no modifier lets both codes be paid together; the column 2 code is not payable with the column 1 code.",
    "1": "Allowed: an NCCI-associated modifier (such as 59, XE, XS, XP, XU, or an anatomic modifier) may let both be paid "
         "when the documentation supports a separate service.",
    "9": "Not applicable: this edit was deleted retroactively and does not apply.",
}


def _pair_view(pair: dict[str, Any]) -> dict[str, Any]:
    indicator = str(pair.get("modifier_indicator", ""))
    return {
        "column1": str(pair.get("column1", "")), "column2": str(pair.get("column2", "")),
        "indicator": indicator,
        "meaning": pair.get("modifier_meaning") or MODIFIER_INDICATORS.get(indicator, ""),
        "message": pair.get("message") or "",
        "modifier_on_column2": pair.get("modifier_on_column2") or "",
        "bypassed": bool(pair.get("bypassed_by_modifier")),
        "rationale": pair.get("rationale") or "",
        "effective": _text(pair.get("effective")), "deleted": _text(pair.get("deleted")),
        "version": _text(pair.get("version")),
    }


def _mue_view(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for entry in entries:
        mue = entry.get("mue")
        if not isinstance(mue, dict):
            continue
        detail = "; ".join(x for x in (_text(mue.get("adjudication")), _text(mue.get("rationale")),
                                       _text(mue.get("version"))) if x)
        out.append({"code": str(entry.get("code", "")), "value": _text(mue.get("value")), "detail": detail})
    return out


def check_view(session: Session, codes: list[str], on: date | None, setting: str) -> dict[str, Any]:
    """Everything the check templates show; used by email and web alike.
    Without a date of service, today is used and the reply says so."""
    given, on = on, on or today()
    try:
        data = check(session, codes, on=on, setting=setting).to_dict()
    except CheckError as exc:
        raise CommandError(str(exc), examples=EXAMPLES) from None
    cards = lookup_cards(session, codes, given)
    pairs = [_pair_view(p) for p in data.get("pairs") or []]
    catalogue = Catalogue(session)
    return {
        # "no pair found" and "pairs not checked" must never read the same
        "ncci_checked": catalogue.has("ncci", setting), "mue_checked": catalogue.has("mue", setting),
        "cards": cards, "pairs": pairs, "mues": _mue_view(data.get("codes") or []),
        "setting": setting, "on": on_text(given),
        "ncci_version": data.get("ncci_table") or catalogue.name_of("ncci", setting) or "",
        "setting_label": SETTING_LABELS.get(setting, setting),
        "addons": [{"code": str(a.get("code", "")), "missing": bool(a.get("missing_primary")),
                    "message": _text(a.get("message")), "version": _text(a.get("version"))}
                   for a in data.get("addons") or []],
        # the "not imported" notes are said in the sections themselves
        "notes": [str(n) for n in data.get("notes") or [] if n and not str(n).startswith(("NCCI ", "MUE "))],
        "all_valid": all(c["found"] and c["valid"] is not False for c in cards),
    }


@handler("CHECK")
def answer_check(ctx: Context, session: Session, inbound: InboundMessage, command: Command) -> Reply:
    request = read_codes(command, max_codes=ctx.settings.commands.max_codes, verb_examples=EXAMPLES)
    view = check_view(session, request.codes, request.on, request.setting)
    return Reply("check", {**view, "ignored": request.ignored}, kind="check")
