"""Look codes up: one :class:`CodeCard` per input, with everything the sets say.

A card answers: which code (canonical), which system, does it exist, its
title (never a CPT descriptor unless a licensed file was imported), is it
billable, is it valid on the date of service, which code-set version says
so, the tabular notes (own and inherited from its category), RVUs, NCCI
edit counts, MUEs, parent and children, and for unknown codes some
suggestions.  The same cards feed email replies, the web queue and drafting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session

from mailbot.codes.dxedits import dx_facts
from mailbot.codes.facts import facts_of
from mailbot.codes.history import status_on, when_text
from mailbot.codes.knowledge import Hint, Knowledge, Row, get_knowledge
from mailbot.codes.modifiers import explain
from mailbot.codes.normalize import CPT, HCPCS, ICD10CM, MODIFIER, candidates, digit_slips, split_modifier
from mailbot.models.codes import CodeEntry, MueLimit, NcciEdit, RvuEntry

# Shown to askers (LOOKUP replies, answers): no operator instructions here --
# how to import a licensed file is in the operator docs and the admin pages.
LICENCE_NOTE = ("CPT descriptors are copyrighted by the AMA and are not shown. "
                "Public CMS data for this code is shown.")
INHERITED_KEYS = ("includes", "excludes1", "excludes2", "code_first", "use_additional", "code_also",
                  "seventh_characters", "notes")
PFS_DELETED = "D"


@dataclass
class CodeCard:
    input: str
    code: str
    system: str | None
    found: bool
    title: str | None = None
    short_title: str | None = None
    billable: bool | None = None
    valid_on_date: bool | None = None
    date: str = ""
    status: str = "unknown"  # ok, not_billable, terminated, not_yet_valid, unknown, invalid, unlicensed_descriptor
    message: str = ""
    version: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    inherited_notes: list[dict[str, Any]] = field(default_factory=list)
    parent: dict[str, Any] | None = None
    children: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    rvu: list[dict[str, Any]] = field(default_factory=list)
    ncci: dict[str, Any] | None = None
    mue: list[dict[str, Any]] = field(default_factory=list)
    modifier: dict[str, Any] | None = None
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    licence_note: str | None = None
    version_warning: str | None = None  # the date lies past the newest imported release
    date_assumed: bool = False  # no date of service was given: ``date`` is today
    since: str = ""  # "header since FY2022 (2021-10-01), billable until 2021-09-30"
    # what to report instead of a header / deleted / terminated code: [{code, title, why}]
    successors: list[dict[str, Any]] = field(default_factory=list)
    dx: dict[str, Any] | None = None  # CC/MCC, HCC, I/OCE edit flags (mailbot.codes.dxedits.dx_facts)

    def to_dict(self) -> dict[str, Any]:
        """A deep copy, safe to change or serialise: card lists share rows
        with the in-memory knowledge."""
        return asdict(self)

    def fields(self) -> dict[str, Any]:
        """The card's fields without copying (``dataclasses.asdict`` copies
        every nested row: ~1 ms of a LOOKUP reply's three cards), for readers
        that only read -- the card partials' :func:`card_view`."""
        return {name: getattr(self, name) for name in _FIELD_NAMES}


_FIELD_NAMES = tuple(f.name for f in dataclass_fields(CodeCard))


def lookup(session: Session, codes: list[str], on: date | None = None) -> list[CodeCard]:
    """One card per input, in input order (unknown and malformed inputs included).

    ``on`` is the date of service; without one, today is used and every card
    says so (``date_assumed``) rather than judging "the date of service".
    Code rows come from the in-memory :mod:`.knowledge`: no query per code
    (RVU, NCCI, MUE and diagnosis flags come from :mod:`.facts` once it is built)."""
    assumed = on is None
    on = on or date.today()
    knowledge = get_knowledge(session, hint=_hint(codes))
    cards = [_card(session, knowledge, raw, on) for raw in codes]
    for card in cards:
        card.date_assumed = assumed
        if assumed and card.message:
            card.message = card.message.replace(f"on {on.isoformat()}", f"on {when_text(on, True)}")
    return cards


def _hint(codes: list[str]) -> Hint:
    """The rows these cards can need, for a process whose full knowledge is still loading."""
    hint = Hint()
    for raw in codes:
        for system, code in candidates(raw):
            if system == ICD10CM:
                hint.categories.add(code[:3])
            else:
                hint.systems.update((system, MODIFIER))
    return hint


def _rows(knowledge: Knowledge, system: str, code: str) -> tuple[Row, ...]:
    return knowledge.rows_of(system, code)


def _valid(row: Row, on: date) -> bool:
    return row.valid_on(on)


def _card(session: Session, knowledge: Knowledge, raw: str, on: date) -> CodeCard:
    catalogue = knowledge.catalogue
    readings = candidates(raw)
    if not readings:
        return CodeCard(input=raw, code=(raw or "").strip().upper(), system=None, found=False, date=on.isoformat(),
                        status="invalid", message=f"{(raw or '').strip()!r} is not shaped like an ICD-10-CM, "
                        "HCPCS, CPT code or modifier")
    for system, code in readings:
        card = _card_for(session, knowledge, raw, system, code, on)
        if card.found:
            return card
    system, code = readings[0]
    card = CodeCard(input=raw, code=code, system=system, found=False, date=on.isoformat(), status="unknown",
                    message=f"{code} is not in the imported {catalogue.label(system)} code set")
    card.suggestions = (_did_you_mean(session, knowledge, raw, on)
                        or _suggestions(session, system, split_modifier(code)[0] if system != ICD10CM else code, on))
    return card


def _did_you_mean(session: Session, knowledge: Knowledge, raw: str, on: date) -> list[dict[str, Any]]:
    """A code the input becomes when letters that look like digits are read as digits ("J103O" -> J1030)."""
    out = []
    for system, code in digit_slips(raw):
        card = _card_for(session, knowledge, raw, system, code, on)
        if card.found:
            out.append({"code": card.code, "system": system, "title": card.title, "did_you_mean": True})
    return out[:3]


def _card_for(session: Session, knowledge: Knowledge, raw: str, system: str, code: str, on: date) -> CodeCard:
    catalogue = knowledge.catalogue
    base, modifier = split_modifier(code) if system in (CPT, HCPCS) else (code, "")
    card = CodeCard(input=raw, code=code, system=system, found=False, date=on.isoformat())
    if system == MODIFIER:
        return _modifier_card(knowledge, card, code)
    rows = _rows(knowledge, system, base)
    if system == CPT and not rows:
        return _public_cpt_card(session, knowledge, card, base, on)
    if not rows:
        return card
    verdict = status_on(knowledge, system, base, on)
    current = next((r for r in rows if _valid(r, on)), None)
    # the row that speaks for the date: the one valid then, else the nearest in time
    row = current or (rows[0] if rows[0].valid_from > on else rows[-1])
    card.found = True
    card.title = row.title
    card.short_title = row.short_title or None
    card.billable = row.billable
    card.valid_on_date = current is not None if verdict.status != "icd9_era" else None
    card.version = verdict.version or catalogue.cite(system, on, row.version_id)
    card.notes = {k: v for k, v in row.notes.items() if k != "source"}
    if len(rows) > 1:
        card.history = [{"valid_from": r.valid_from.isoformat(), "valid_to": r.valid_to.isoformat() if r.valid_to
                         else None, "title": r.title, "billable": r.billable,
                         "version": catalogue.name(r.version_id)} for r in rows]
    if system == ICD10CM:
        _icd_context(knowledge, card, row, on)
        card.dx = dx_facts(session, card.code, on, knowledge=knowledge)
    else:
        _public_facts(session, knowledge, card, base, on)
        card.version_warning = catalogue.staleness(system if system == HCPCS else "pfs", on)
    if modifier:
        card.modifier = _modifier_facts(knowledge, modifier)
    card.status, card.message, card.since = verdict.status, verdict.message, verdict.since
    card.successors = verdict.successors
    return card


def _icd_context(knowledge: Knowledge, card: CodeCard, row: Row, on: date) -> None:
    bare = card.code.replace(".", "")
    ancestors = [bare[:3]] + [f"{bare[:3]}.{bare[3:i]}" for i in range(4, len(bare))]
    ancestors = [a for a in ancestors if a != card.code]
    found = {a: r for a in ancestors if (r := knowledge.on(ICD10CM, a, on)) is not None}
    for code in ancestors:
        r = found.get(code)
        if r is None:
            continue
        inherited = {k: v for k, v in r.notes.items() if k in INHERITED_KEYS}
        if inherited:
            card.inherited_notes.append({"code": code, "title": r.title, "notes": inherited})
    if row.parent and row.parent in found:
        card.parent = {"code": row.parent, "title": found[row.parent].title}
    card.children = [{"code": c.code, "title": c.title, "billable": c.billable}
                     for c in knowledge.children_on(ICD10CM, card.code, on)]


def _public_cpt_card(session: Session, knowledge: Knowledge, card: CodeCard, base: str, on: date) -> CodeCard:
    """A CPT code known only by number from the public CMS files (RVU, NCCI, MUE)."""
    catalogue = knowledge.catalogue
    _public_facts(session, knowledge, card, base, on)
    if not (card.rvu or card.mue or (card.ncci and any(v["as_column1"] + v["as_column2"]
                                                       for v in card.ncci.values()))):
        return card
    card.found = True
    card.licence_note = LICENCE_NOTE
    deleted = bool(card.rvu) and all(r["status"] == PFS_DELETED for r in card.rvu)
    card.valid_on_date = not deleted
    card.billable = not deleted
    card.version = catalogue.public_cpt_version()
    card.version_warning = catalogue.staleness("pfs", on)
    if deleted:
        card.status = "terminated"
        card.message = f"{base} is marked deleted (status D) in the Physician Fee Schedule"
    else:
        card.status = "unlicensed_descriptor"
        card.message = f"{base} is a CPT code known from public CMS files; its descriptor needs an AMA licence"
    _, modifier = split_modifier(card.code)
    if modifier:
        card.modifier = _modifier_facts(knowledge, modifier)
    return card


def _public_facts(session: Session, knowledge: Knowledge, card: CodeCard, code: str, on: date) -> None:
    """RVU, NCCI counts and MUEs: from the in-memory :mod:`.facts` once built, else by query (same answers)."""
    catalogue = knowledge.catalogue
    facts = facts_of(session, knowledge)
    if facts is None:
        rvus = session.execute(select(RvuEntry).where(RvuEntry.code == code)
                               .order_by(RvuEntry.modifier, RvuEntry.id)).scalars()
        mues = session.execute(select(MueLimit).where(MueLimit.code == code)
                               .order_by(MueLimit.setting, MueLimit.id)).scalars()
    else:
        rvus, mues = facts.rvu.get(code, ()), facts.mue.get(code, ())
    card.rvu = [_rvu_dict(r, catalogue) for r in rvus]
    if catalogue.has("ncci"):
        card.ncci = {}
        for setting in ("practitioner", "hospital"):
            if not catalogue.has("ncci", setting):
                continue
            if facts is None:
                as1, as2 = (_ncci_count(session, setting, column, code, on)
                            for column in (NcciEdit.column1, NcciEdit.column2))
            else:
                as1, as2 = (facts.ncci_count(setting, number, code, on) for number in (1, 2))
            card.ncci[setting] = {"as_column1": as1, "as_column2": as2,
                                  "version": catalogue.name_of("ncci", setting)}
    card.mue = [{"setting": m.setting, "value": m.value, "adjudication": m.adjudication, "rationale": m.rationale,
                 "version": catalogue.name(m.version_id)} for m in mues]


def _ncci_count(session: Session, setting: str, column, code: str, on: date) -> int:
    active = or_(NcciEdit.deleted.is_(None), NcciEdit.deleted > on)
    return session.execute(select(func.count()).where(NcciEdit.setting == setting, column == code,
                                                      NcciEdit.effective <= on, active)).scalar_one()


def _rvu_dict(r: RvuEntry, catalogue) -> dict[str, Any]:
    cf = r.conversion_factor
    return {
        "modifier": r.modifier or None, "status": r.status, "global_days": r.global_days,
        "work_rvu": r.work_rvu, "nonfacility_pe_rvu": r.nonfacility_pe_rvu, "facility_pe_rvu": r.facility_pe_rvu,
        "mp_rvu": r.mp_rvu, "nonfacility_total": r.nonfacility_total, "facility_total": r.facility_total,
        "conversion_factor": cf,
        "national_payment_nonfacility": round(r.nonfacility_total * cf, 2),
        "national_payment_facility": round(r.facility_total * cf, 2),
        "indicators": r.indicators, "version": catalogue.name(r.version_id),
    }


def _modifier_facts(knowledge: Knowledge, modifier: str) -> dict[str, Any]:
    rows = _rows(knowledge, MODIFIER, modifier)
    return {"code": modifier, "title": rows[-1].title if rows else None, "explanation": explain(modifier)}


def _modifier_card(knowledge: Knowledge, card: CodeCard, code: str) -> CodeCard:
    """HCPCS Level II modifiers carry their CMS descriptor; CPT modifiers only our guidance."""
    catalogue = knowledge.catalogue
    rows = _rows(knowledge, MODIFIER, code)
    explanation = explain(code)
    if not rows and not explanation:
        return card
    on = date.fromisoformat(card.date)
    card.found = True
    card.notes = {"explanation": explanation} if explanation else {}
    if rows:
        row = next((r for r in rows if _valid(r, on)), rows[-1])
        card.title = row.title
        card.valid_on_date = _valid(row, on)
        card.version = catalogue.cite(HCPCS, on, row.version_id)
        card.status = "ok" if card.valid_on_date else "terminated"
        card.message = f"HCPCS Level II modifier {code}"
    else:
        card.valid_on_date = True
        card.version = "plain-language guidance (mailbot)"
        card.status = "unlicensed_descriptor"
        card.licence_note = "CPT modifier descriptors are AMA-licensed; the explanation shown is our own."
        card.message = f"CPT modifier {code}"
    return card


def _suggestions(session: Session, system: str, code: str, on: date) -> list[dict[str, Any]]:
    """Nearby real codes for an unknown one: the billable codes under its longest known prefix."""
    if system not in (ICD10CM, HCPCS, CPT):
        return []
    bare = code.replace(".", "")
    for cut in range(len(bare) - 1, 2 if system == ICD10CM else 3, -1):
        prefix = bare[:cut]
        pattern = (f"{prefix[:3]}.{prefix[3:]}%" if len(prefix) > 3 else f"{prefix}%") if system == ICD10CM \
            else f"{prefix}%"
        if system == CPT:
            rows = session.execute(select(RvuEntry.code).where(RvuEntry.code.like(pattern), RvuEntry.modifier == "")
                                   .order_by(RvuEntry.code).limit(8)).scalars().all()
            if rows:
                return [{"code": c, "system": CPT, "title": None} for c in rows]
            continue
        rows = session.execute(select(CodeEntry).where(
            CodeEntry.system == system, CodeEntry.code.like(pattern), CodeEntry.billable.is_(True),
            CodeEntry.valid_from <= on, or_(CodeEntry.valid_to.is_(None), CodeEntry.valid_to >= on))
            .order_by(CodeEntry.code).limit(8)).scalars().all()
        if rows:
            return [{"code": r.code, "system": system, "title": r.title} for r in rows]
    return []
