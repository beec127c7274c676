"""Check a set of codes billed together: validity, NCCI pairs, MUEs.

``check(session, ["20610", "99213-25"], on=date(2026, 3, 2))`` reports each
code's validity on the date, every NCCI procedure-to-procedure edit between
the codes (which one is column 1, the modifier indicator and what it means,
the CMS rationale) for the practitioner or outpatient-hospital table, and
the MUE (maximum units per day) of each code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from mailbot.codes.catalogue import Catalogue
from mailbot.codes.lookup import lookup
from mailbot.codes.normalize import CPT, HCPCS, split_modifier
from mailbot.models.codes import MueLimit, NcciEdit

SETTINGS = ("practitioner", "hospital")
MODIFIER_INDICATORS = {
    "0": "No modifier allowed: the column 2 code is not payable with the column 1 code on the same day, "
         "whatever modifier is used.",
    "1": "A modifier is allowed: when the services are truly distinct (different session, site, organ or "
         "incision) and documented, an NCCI-associated modifier (59, XE, XS, XP, XU, anatomic modifiers such "
         "as LT/RT, F1-FA, T1-TA, E1-E4, LC/LD/RC...) on the column 2 code bypasses the edit.",
    "9": "Not applicable: the edit was deleted retroactively; it does not apply.",
}
BYPASS_MODIFIERS = {"59", "XE", "XS", "XP", "XU", "LT", "RT", "E1", "E2", "E3", "E4", "FA", "F1", "F2", "F3",
                    "F4", "F5", "F6", "F7", "F8", "F9", "TA", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8",
                    "T9", "LC", "LD", "LM", "RC", "RI", "24", "25", "57", "27", "91"}


class CheckError(ValueError):
    """The check cannot run (no codes, unknown setting)."""


@dataclass
class CheckResult:
    date: str
    setting: str
    codes: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(session: Session, codes: list[str], on: date | None = None, setting: str = "practitioner") -> CheckResult:
    if setting not in SETTINGS:
        raise CheckError(f"unknown setting {setting!r}; use practitioner or hospital")
    if not codes:
        raise CheckError("give at least one code to check")
    on = on or date.today()
    catalogue = Catalogue(session)
    result = CheckResult(date=on.isoformat(), setting=setting)
    cards = lookup(session, codes, on)
    procedure_codes: dict[str, str] = {}  # base code -> attached modifier
    for card in cards:
        base, modifier = split_modifier(card.code) if card.system in (CPT, HCPCS) else (card.code, "")
        entry = {"input": card.input, "code": card.code, "system": card.system, "found": card.found,
                 "title": card.title, "status": card.status, "valid_on_date": card.valid_on_date,
                 "billable": card.billable, "message": card.message, "version": card.version, "mue": None}
        if card.system in (CPT, HCPCS) and card.found:
            procedure_codes.setdefault(base, modifier)
            mue = session.execute(select(MueLimit).where(MueLimit.code == base, MueLimit.setting == setting)).scalars().first()
            if mue:
                entry["mue"] = {"value": mue.value, "adjudication": mue.adjudication, "rationale": mue.rationale,
                                "version": catalogue.name(mue.version_id)}
        result.codes.append(entry)
    if not catalogue.has("ncci", setting):
        result.notes.append(f"NCCI {setting} PTP edits are not imported: code pairs were not checked "
                            "(mailbot codes import --ncci FILE)")
    elif len(procedure_codes) > 1:
        keys = list(procedure_codes)
        edits = session.execute(select(NcciEdit).where(
            NcciEdit.setting == setting, NcciEdit.column1.in_(keys), NcciEdit.column2.in_(keys),
            NcciEdit.effective <= on, or_(NcciEdit.deleted.is_(None), NcciEdit.deleted > on))
            .order_by(NcciEdit.column1, NcciEdit.column2)).scalars()
        for edit in edits:
            if edit.column1 == edit.column2:
                continue
            modifier = procedure_codes.get(edit.column2, "")
            bypassed = edit.modifier_indicator == "1" and modifier in BYPASS_MODIFIERS
            result.pairs.append({
                "column1": edit.column1, "column2": edit.column2,
                "modifier_indicator": edit.modifier_indicator,
                "modifier_meaning": MODIFIER_INDICATORS.get(edit.modifier_indicator, ""),
                "rationale": edit.rationale, "effective": edit.effective.isoformat(),
                "deleted": edit.deleted.isoformat() if edit.deleted else None,
                "modifier_on_column2": modifier or None, "bypassed_by_modifier": bypassed,
                "version": catalogue.name(edit.version_id),
                "message": _pair_message(edit, modifier, bypassed),
            })
    if not catalogue.has("mue", setting):
        result.notes.append(f"MUE {setting} table is not imported: unit limits were not checked")
    return result


def _pair_message(edit: NcciEdit, modifier: str, bypassed: bool) -> str:
    head = f"NCCI edit: {edit.column2} (column 2) is bundled into {edit.column1} (column 1)"
    if edit.modifier_indicator == "0":
        return f"{head}; no modifier can bypass it."
    if edit.modifier_indicator == "9":
        return f"{head}; indicator 9: not applicable."
    if bypassed:
        return f"{head}; modifier {modifier} on {edit.column2} bypasses it if the documentation supports it."
    return f"{head}; a modifier (e.g. 59 or XE/XS/XP/XU) on {edit.column2} may bypass it when distinct and documented."
