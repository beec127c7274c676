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
    setting: str = "practitioner"   # the NCCI table that decides (the other setting's pairs are labelled facts)

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
                  on: date | None = None, setting: str = "practitioner") -> Verification:
    """Verify ``cited`` (``[{"code", "role"}]``) plus codes written in ``answer``; NCCI pairs
    for ``setting`` (practitioner or hospital), the other setting's loaded table labelled."""
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

    result = Verification(setting=setting)
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
        check = edits.check(session, procedures, on=on, setting=setting).to_dict()
        result.ncci = ncci_pairs(check)
    return result


def claim_setting(question: str) -> str:
    """The NCCI table that decides for the claim the (redacted) question is about: ``hospital`` when it
    says hospital outpatient, else ``practitioner`` (also for an ASC claim)."""
    from mailbot.answers.facts import extract
    from mailbot.answers.resolvers.bundle import ncci_setting

    return ncci_setting(extract(question or ""))[0]


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


# --- The approval guard ---------------------------------------------------
# What stops an answer at "Approve": each rule names the problem in words a
# reviewer can act on.  Codes that do not exist at all stay blocking with no
# override (zero invented codes reach a sender); everything else here may be
# overridden by a reviewer with a reason, which the caller audits.

# the labels drafts stored before the label moved to the metadata carried (offline.LABEL_PREFIXES)
OFFLINE_LABEL = re.compile(r"\[\s*(?:Offline draft|LLM unavailable)\s*:", re.I)

# A code mentioned only in sentences like these is being warned against, not
# recommended ("M54.5 is a header code; report M54.50 instead").
NOT_RECOMMENDED_CUE = re.compile(
    r"\b(not billable|non-?billable|header|do not|don't|never|not (?:be )?report\w*|no longer|not valid|"
    r"invalid|terminated|deleted|discontinued|replaced|instead of|rather than|not use|avoid|"
    r"cannot be (?:billed|reported|used)|can't be (?:billed|reported|used)|not a valid|stop using|expired)\b",
    re.I)

# An answer "addresses" an NCCI pair when it talks about the edit or a modifier.
NCCI_ADDRESSED_CUE = re.compile(
    r"\b(NCCI|PTP|bundl\w*|edit|modifier|separately (?:identifiable|reportable)|distinct)\b|"
    r"-\s?(?:25|59|XE|XS|XP|XU|91|LT|RT|50)\b", re.I)

_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")

# status -> (kind, reason); ``{when}`` is the date of service or "today".
GUARDED_STATUSES = {
    "not_billable": ("header", "{code} is a header (category) code, not billable; name a billable child code"),
    "terminated": ("terminated", "{code} is not valid {when}: it was terminated or deleted"),
    "not_yet_valid": ("not_yet_valid", "{code} is not yet valid {when}"),
}


@dataclass(frozen=True)
class ApprovalProblem:
    """One reason an answer should not be sent as it stands."""

    kind: str           # unknown | header | terminated | not_yet_valid | ncci | offline_label
    code: str
    reason: str
    overridable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "reason": self.reason, "overridable": self.overridable}


def _recommended(code: str, body: str) -> bool:
    """True unless every sentence of ``body`` naming ``code`` warns against it."""
    from mailbot.codes.extract import find_codes

    key = base_code(code)
    naming = [s for s in _SENTENCE.split(body) if any(base_code(c) == key or c.upper() == code.upper()
                                                      for c in find_codes(s))]
    return not naming or any(not NOT_RECOMMENDED_CUE.search(s) for s in naming)


def approval_problems(verification: Verification, body: str, on: date | None = None) -> list[ApprovalProblem]:
    """Why ``body`` (already verified as ``verification``) should not be sent.

    Returns the problems in the order a reviewer should fix them; empty when
    the answer may go.  ``on`` is the date of service (None: none was given,
    the codes were checked for today)."""
    when = f"on the date of service {on.isoformat()}" if on else "today (no date of service was given)"
    problems: list[ApprovalProblem] = []
    for row in verification.codes:
        status = row.get("status", "")
        if status in BLOCKING_STATUSES:
            problems.append(ApprovalProblem("unknown", row["code"],
                                            f"{row['code']} does not exist in the code sets ({status})",
                                            overridable=False))
        elif status in GUARDED_STATUSES and row.get("role") not in ("not_recommended", "not recommended") \
                and _recommended(row["code"], body):
            kind, reason = GUARDED_STATUSES[status]
            problems.append(ApprovalProblem(kind, row["code"], reason.format(code=row["code"], when=when)))
    problems += _ncci_problems(verification, body)
    if OFFLINE_LABEL.search(body):
        problems.append(ApprovalProblem("offline_label", "",
                                        "the \"[Offline draft …]\" label is still in the text; remove it"))
    return problems


def _ncci_problems(verification: Verification, body: str) -> list[ApprovalProblem]:
    """NCCI pairs between two codes the answer recommends, for the claim's setting.

    Indicator 9 (deleted retroactively) never counts; a pair whose column 2
    code the answer marks not to report is handled; indicator 0 stays a
    problem even when the answer talks about modifiers (no modifier allows
    both); indicator 1 is fine once the answer addresses the edit or a
    modifier.  Pairs of the other setting's table (labelled in the reply)
    are facts for another kind of claim, not a conflict of this answer."""
    problems: list[ApprovalProblem] = []
    addressed = bool(NCCI_ADDRESSED_CUE.search(body))
    for pair in verification.ncci:
        col1 = pair.get("column1") or pair.get("column_1") or ""
        col2 = pair.get("column2") or pair.get("column_2") or ""
        indicator = str(pair.get("modifier_indicator", "?"))
        if indicator == "9" or (pair.get("setting") and pair["setting"] != verification.setting):
            continue
        if not (_recommended(col1, body) and _recommended(col2, body)):
            continue   # one of the two is named only as not to report
        if indicator == "0":
            problems.append(ApprovalProblem(
                "ncci", f"{col1}/{col2}", f"NCCI edit: {col2} is bundled into {col1} and no modifier allows both "
                f"(modifier indicator 0, {pair.get('version') or 'NCCI PTP'}); the answer still recommends both"))
        elif not addressed:
            problems.append(ApprovalProblem(
                "ncci", f"{col1}/{col2}", f"NCCI edit: {col2} is bundled into {col1} (modifier indicator "
                f"{indicator}); the answer does not say how to handle it"))
    return problems
