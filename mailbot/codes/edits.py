"""Check a set of codes billed together: validity, NCCI pairs, MUEs.

``check(session, ["20610", "99213-25"], on=date(2026, 3, 2))`` reports each
code's validity on the date, every NCCI procedure-to-procedure edit between
the codes (which one is column 1, the modifier indicator and what it means,
the CMS rationale) for the practitioner or outpatient-hospital table, the
MUE (maximum units per day) of each code, and add-on codes reported without
any of their primary codes.

The hospital outpatient PTP table ships with mailbot (the I/OCE table, see
``mailbot.codes.importers.ncci_shipped``); the practitioner table and MUEs
are operator imports.  A table that is not loaded is said to be unchecked,
never "no edits": a practitioner claim is never checked against the
hospital table (their pairs differ: hospitals bill clinic visits as G0463).
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
from mailbot.models.codes import CodeFlag, MueLimit, NcciEdit

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
    ncci_table: str | None = None  # "NCCI PTP, hospital outpatient, April 2026"; None = not loaded
    addons: list[dict[str, Any]] = field(default_factory=list)
    # [{"setting", "table", "pairs"}] for the loaded tables of the other setting
    other_settings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(session: Session, codes: list[str], on: date | None = None, setting: str = "practitioner",
          catalogue: Catalogue | None = None) -> CheckResult:
    """NCCI PTP pairs, MUEs and add-on rules for ``codes`` on ``on`` in ``setting``.  ``catalogue``: the
    loaded versions when the caller has read them already (one read per question, not per check)."""
    if setting not in SETTINGS:
        raise CheckError(f"unknown setting {setting!r}; use practitioner or hospital")
    if not codes:
        raise CheckError("give at least one code to check")
    on = on or date.today()
    catalogue = catalogue or Catalogue(session)
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
    result.ncci_table = catalogue.name_of("ncci", setting)
    if not catalogue.has("ncci", setting):
        result.notes.append(f"NCCI {setting} PTP edits are not imported: code pairs were not checked. The "
                            f"{setting} PTP table decides for a {setting} claim"
                            + (" (the shipped hospital outpatient table does not apply to it)"
                               if setting == "practitioner" else "")
                            + "; import it with mailbot codes import --ncci FILE")
    elif len(procedure_codes) > 1:
        result.pairs = _pairs(session, catalogue, setting, procedure_codes, on)
    # the other setting's table, when loaded, labelled as such (drafts and the
    # reviewer see both; the answer for THIS setting is only result.pairs)
    for other in SETTINGS:
        if other != setting and catalogue.has("ncci", other) and len(procedure_codes) > 1:
            result.other_settings.append({"setting": other, "table": catalogue.name_of("ncci", other),
                                          "pairs": _pairs(session, catalogue, other, procedure_codes, on)})
    result.addons = addon_flags(session, catalogue, list(procedure_codes), on)
    if not catalogue.has("mue", setting):
        result.notes.append(f"MUE {setting} table is not imported: unit limits were not checked")
    return result


def _pairs(session: Session, catalogue: Catalogue, setting: str, procedure_codes: dict[str, str],
           on: date) -> list[dict[str, Any]]:
    keys = list(procedure_codes)
    edits = session.execute(select(NcciEdit).where(
        NcciEdit.setting == setting, NcciEdit.column1.in_(keys), NcciEdit.column2.in_(keys),
        NcciEdit.effective <= on, or_(NcciEdit.deleted.is_(None), NcciEdit.deleted > on))
        .order_by(NcciEdit.column1, NcciEdit.column2)).scalars()
    pairs = []
    for edit in edits:
        if edit.column1 == edit.column2:
            continue
        modifier = procedure_codes.get(edit.column2, "")
        bypassed = edit.modifier_indicator == "1" and modifier in BYPASS_MODIFIERS
        table = catalogue.name(edit.version_id)
        pairs.append({
            "column1": edit.column1, "column2": edit.column2, "setting": setting,
            "modifier_indicator": edit.modifier_indicator,
            "modifier_meaning": MODIFIER_INDICATORS.get(edit.modifier_indicator, ""),
            "rationale": edit.rationale, "effective": edit.effective.isoformat(),
            "deleted": edit.deleted.isoformat() if edit.deleted else None,
            "modifier_on_column2": modifier or None, "bypassed_by_modifier": bypassed,
            "version": table, "message": f"{table}: {_pair_message(edit, modifier, bypassed)}",
        })
    return pairs


def _pair_message(edit: NcciEdit, modifier: str, bypassed: bool) -> str:
    head = f"NCCI edit: {edit.column2} (column 2) is bundled into {edit.column1} (column 1)"
    if edit.modifier_indicator == "0":
        return f"{head}; no modifier can bypass it."
    if edit.modifier_indicator == "9":
        return f"{head}; indicator 9: not applicable."
    if bypassed:
        return f"{head}; modifier {modifier} on {edit.column2} bypasses it if the documentation supports it."
    return f"{head}; a modifier (e.g. 59 or XE/XS/XP/XU) on {edit.column2} may bypass it when distinct and documented."


def addon_flags(session: Session, catalogue: Catalogue, codes: list[str], on: date) -> list[dict[str, Any]]:
    """Add-on codes among ``codes``: each with its primary codes and whether one is present.

    From the I/OCE add-on lists (``code_flag`` rows ``addon_primary`` / ``addon``);
    an add-on with a primary list and none of them in ``codes`` is flagged."""
    if not codes:
        return []
    rows = session.execute(select(CodeFlag).where(
        CodeFlag.system == "proc", CodeFlag.code.in_(codes), CodeFlag.flag.in_(("addon_primary", "addon")),
        CodeFlag.valid_from <= on, or_(CodeFlag.valid_to.is_(None), CodeFlag.valid_to >= on))
        .order_by(CodeFlag.code, CodeFlag.value)).scalars().all()
    out: list[dict[str, Any]] = []
    for code in dict.fromkeys(r.code for r in rows):
        mine = [r for r in rows if r.code == code]
        primaries = [r.value for r in mine if r.flag == "addon_primary"]
        present = [c for c in primaries if c in codes]
        missing = bool(primaries) and not present
        if missing:
            shown = ", ".join(primaries[:12]) + (f" and {len(primaries) - 12} more" if len(primaries) > 12 else "")
            message = f"{code} is an add-on code reported without any of its primary codes ({shown})."
        elif present:
            message = f"{code} is an add-on code; its primary code {', '.join(present)} is reported with it."
        else:
            message = f"{code} is an add-on code: report it with the primary service it adds to."
        out.append({"code": code, "primaries": primaries, "present": present, "missing_primary": missing,
                    "message": message, "version": catalogue.name(mine[0].version_id)})
    return out
