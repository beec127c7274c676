"""Verification: every code a draft cites, checked against the code sets.

Checked are the codes the draft cites *and* any code that appears in the
answer text without being cited (a model -- or a reviewer -- may write one
into a sentence).  Each gets the knowledge base's verdict for the date of
service (exists, billable, not terminated, CPT descriptor licensed or not),
its title or licence note, and the code-set version.  NCCI pairs among the
cited procedure codes are surfaced.

Two levels of trouble:

- *flagged* -- any verdict that is not ok (header code, terminated, unknown
  ...): shown to the reviewer, and shown with its status in the reply table,
  so nothing reaches a sender unflagged;
- *blocking* -- the code does not exist at all (invented, malformed): an
  answer citing it cannot be approved until the reviewer removes or fixes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session

from mailbot.drafting.context import base_code
from mailbot.drafting.offline import ncci_pairs

BLOCKING_STATUSES = frozenset({"invalid", "unknown", "unrecognised", "not_found"})


@dataclass
class Verification:
    codes: list[dict[str, Any]] = field(default_factory=list)
    ncci: list[dict[str, Any]] = field(default_factory=list)
    mue: list[dict[str, Any]] = field(default_factory=list)

    @property
    def flagged(self) -> list[dict[str, Any]]:
        return [c for c in self.codes if not c["ok"]]

    @property
    def blocking(self) -> list[dict[str, Any]]:
        return [c for c in self.codes if c["status"] in BLOCKING_STATUSES]

    @property
    def flags(self) -> int:
        return len(self.flagged) + len(self.ncci)


def verify_answer(session: Session, cited: list[dict[str, Any]], answer: str,
                  on: date | None = None) -> Verification:
    """Verify ``cited`` (``[{"code", "role"}]``) plus codes written in ``answer``."""
    from mailbot.codes import edits, lookup, validate
    from mailbot.codes.extract import find_codes
    from mailbot.codes.normalize import normalize

    entries: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(raw: str, role: str) -> None:
        found = normalize(raw)
        canonical = found[1] if found else raw.strip().upper()
        key = base_code(canonical)
        if key in seen:
            return
        seen.add(key)
        entries.append({"code": canonical, "base": key, "role": role, "recognised": found is not None})

    for item in cited:
        if str(item.get("code", "")).strip():
            add(str(item["code"]), str(item.get("role") or "mentioned"))
    for code in find_codes(answer):
        add(code, "uncited")

    result = Verification()
    known = [e for e in entries if e["recognised"]]
    cards = lookup.lookup(session, [e["base"] for e in known], on=on) if known else []
    verdicts = [validate.verdict_of(c) for c in cards]  # one lookup serves both
    by_base = {e["base"]: (v, c.to_dict()) for e, v, c in zip(known, verdicts, cards)}
    for entry in entries:
        verdict, card = by_base.get(entry["base"], (None, {}))
        if verdict is None:
            result.codes.append(_row(entry, system="", status="unrecognised", ok=False,
                                     message="not a code in any supported format", version="", title=""))
            continue
        result.codes.append(_row(
            entry, system=getattr(verdict, "system", "") or card.get("system", ""), status=str(verdict.status),
            ok=bool(verdict.ok), message=getattr(verdict, "message", "") or "",
            version=str(getattr(verdict, "version", "") or card.get("version") or ""),
            title=card.get("title") or "", licence_note=card.get("licence_note") or "",
            since=verdict.since, successors=verdict.successors, date_assumed=verdict.date_assumed))
    procedures = [e["base"] for e in known if re.fullmatch(r"\d{4}[0-9FTUM]|[A-Z]\d{4}", e["base"])]
    if len(procedures) >= 1:
        check = edits.check(session, procedures, on=on).to_dict()
        result.ncci = ncci_pairs(check)
    return result


def _row(entry: dict[str, Any], **facts: Any) -> dict[str, Any]:
    row = {"code": entry["code"], "role": entry["role"], "system": "", "status": "", "ok": False,
           "message": "", "version": "", "title": "", "licence_note": "", "since": "", "successors": [],
           "date_assumed": False}
    row.update(facts)
    return row


def codes_still_in(body: str, cited: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cited codes the (edited) ``body`` still mentions: a reviewer who
    deletes a code from the text has removed it from the answer."""
    from mailbot.codes.extract import find_codes
    from mailbot.codes.normalize import normalize

    present = {base_code(c) for c in find_codes(body)}

    def canonical(code: str) -> str:
        found = normalize(code)
        return base_code(found[1] if found else code.strip().upper())

    return [c for c in cited if canonical(str(c.get("code", ""))) in present]


def recommendation_problems(session: Session, body: str, cited: list[dict[str, Any]],
                            on: date | None = None, setting: str = "practitioner") -> list[str]:
    """Why an answer may not be sent as it stands: one sentence per problem, empty when none.

    For the approval guard (the reviewer may override with an audited reason):

    - a code the answer recommends (role ``recommended``, or written in the body
      without a "do not report" / "not" on its line) is a header, not valid on the
      date of service, or unknown;
    - two recommended procedure codes form an NCCI pair the answer does not address
      (no modifier on the column 2 code, no mention of the edit, or indicator 0);
    - the offline-draft label is still in the text.
    """
    from mailbot.codes import edits, lookup
    from mailbot.codes.extract import find_codes
    from mailbot.codes.normalize import normalize
    from mailbot.drafting.offline import LABEL_PREFIXES

    problems: list[str] = []
    if any(prefix in body for prefix in LABEL_PREFIXES):
        problems.append("the offline-draft label is still in the text; remove it before sending")
    recommended: dict[str, str] = {}   # base code -> as written
    for item in cited:
        if str(item.get("role") or "") == "recommended" and str(item.get("code") or "").strip():
            found = normalize(str(item["code"]))
            if found:
                recommended.setdefault(base_code(found[1]), found[1])
    for line in body.splitlines():
        if re.search(r"\b(?:do not|don't|not to be|never|instead of|no longer|ended|terminated|header)\b", line,
                     re.I):
            continue   # a line marking codes not to report
        for code in find_codes(line):
            recommended.setdefault(base_code(code), code)
    if not recommended:
        return problems
    cards = lookup.lookup(session, list(recommended), on=on)
    for card in cards:
        if card.status == "not_billable":
            problems.append(f"{card.code} is a header on the date of service: report a code under it")
        elif card.status in ("terminated", "not_yet_valid"):
            problems.append(f"{card.code} is not valid on the date of service ({card.message})")
        elif not card.found:
            problems.append(f"{card.input} is not in the loaded code sets")
    procedures = [c for c in recommended if re.fullmatch(r"\d{4}[0-9FTUM]|[A-Z]\d{4}", c)]
    if len(procedures) >= 2:
        written = {base_code(c): c for c in find_codes(body)}
        check = edits.check(session, [written.get(c, recommended[c]) for c in procedures], on=on,
                            setting=setting).to_dict()
        for pair in check.get("pairs") or []:
            col1, col2 = pair["column1"], pair["column2"]
            if pair.get("modifier_indicator") == "9":
                continue
            if pair.get("modifier_indicator") == "0":
                problems.append(f"NCCI: {col2} is bundled into {col1} and no modifier allows both (indicator 0)")
            elif not pair.get("bypassed_by_modifier") and "NCCI" not in body:
                problems.append(f"NCCI: {col2} is bundled into {col1}; the answer neither adds a modifier to "
                                f"{col2} nor addresses the edit")
    return problems
