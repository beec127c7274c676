"""Code cards: what the ``_partials/card`` templates show for one code.

:func:`card_view` turns a :class:`mailbot.codes.lookup.CodeCard` (its
``to_dict()``) into plain rows of label and value, so the text and HTML
partials, the email and the reviewer web page show the same facts in the
same order.  Every value comes from the knowledge base; this module adds
only labels and the meanings CMS publishes for its one-letter indicators.
"""

from __future__ import annotations

from datetime import date
from typing import Any

SYSTEM_LABELS = {"icd10cm": "ICD-10-CM", "hcpcs": "HCPCS Level II", "cpt": "CPT", "modifier": "Modifier"}

# ICD-10-CM tabular notes, in the order coders read them.
NOTE_LABELS = (
    ("inclusion_terms", "Inclusion terms"),
    ("includes", "Includes"),
    ("excludes1", "Excludes1 (never together)"),
    ("excludes2", "Excludes2 (not included here; both may be coded)"),
    ("code_first", "Code first"),
    ("use_additional", "Use additional code"),
    ("code_also", "Code also"),
    ("notes", "Notes"),
    ("seventh_note", "7th character"),
    ("explanation", "What it means"),
)
# HCPCS record fields shown as facts, with labels (CMS HCPCS record layout).
HCPCS_FACTS = (
    ("added", "Added"), ("action", "Last action"), ("action_effective", "Action effective"),
    ("terminated", "Terminated"), ("coverage", "Medicare coverage"), ("pricing", "Pricing indicator"),
    ("betos", "BETOS"), ("type_of_service", "Type of service"), ("xref", "Cross reference"),
    ("asc_group", "ASC payment group"), ("processing_note", "Processing note"),
    ("descriptor_source", "Descriptor shown"), ("short_descriptor_latest", "Newest short descriptor"),
    ("in_ioce_since", "In the I/OCE"), ("terminated_source", "Termination"),
)
HCPCS_ACTIONS = {
    "A": "added", "B": "administrative data and long descriptor changed", "C": "long descriptor changed",
    "D": "discontinued", "F": "administrative data changed", "N": "no change", "P": "payment changed",
    "R": "reactivated", "S": "short descriptor changed", "T": "miscellaneous change",
}
HCPCS_COVERAGE = {
    "C": "carrier judgment", "D": "special coverage instructions apply", "I": "not payable by Medicare",
    "M": "not covered by Medicare", "S": "not covered by Medicare statute",
}
PFS_STATUS = {
    "A": "active, paid under the fee schedule", "B": "bundled, never paid separately", "C": "carrier priced",
    "D": "deleted", "E": "excluded by regulation", "F": "deleted/discontinued, no grace period",
    "G": "not valid for Medicare; another code applies", "H": "deleted modifier", "I": "not valid for Medicare",
    "J": "anesthesia service", "M": "measurement code, not paid", "N": "not covered by Medicare",
    "P": "bundled or excluded", "R": "restricted coverage", "T": "paid only if no other service that day",
    "X": "statutory exclusion",
}
GLOBAL_DAYS = {
    "000": "0 days (endoscopic or minor procedure)", "010": "10 days (minor procedure)",
    "090": "90 days (major surgery)", "MMM": "maternity global", "XXX": "global concept does not apply",
    "YYY": "global period set by the carrier", "ZZZ": "add-on code, within another service's global",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, (list, tuple)):
        return "; ".join(_text(v) for v in value if v not in (None, ""))
    if isinstance(value, dict):
        return "; ".join(f"{label_for(str(k))}: {_text(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    return str(value)


def label_for(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _lines(value: Any) -> list[str]:
    return [_text(v) for v in value] if isinstance(value, list) else [_text(value)]


def _icd_notes(notes: dict[str, Any], source: str = "") -> list[dict[str, Any]]:
    """Tabular notes as [{label, lines}] in reading order."""
    out: list[dict[str, Any]] = []
    suffix = f" (from {source})" if source else ""
    for key, label in NOTE_LABELS:
        if notes.get(key):
            out.append({"label": label + suffix, "lines": _lines(notes[key])})
    seventh = notes.get("seventh_characters")
    if isinstance(seventh, dict) and seventh:
        out.append({"label": "7th characters" + suffix, "lines": [f"{k} = {v}" for k, v in seventh.items()]})
    one = notes.get("seventh_character")
    if isinstance(one, dict) and one.get("char"):
        out.append({"label": "7th character", "lines": [f"{one['char']} = {one.get('meaning', '')}"]})
    return out


def _hcpcs_facts(notes: dict[str, Any], short_title: str | None) -> list[dict[str, str]]:
    rows = [{"label": "Short descriptor", "value": short_title}] if short_title else []
    for key, label in HCPCS_FACTS:
        value = notes.get(key)
        if not value:
            continue
        meaning = {"action": HCPCS_ACTIONS, "coverage": HCPCS_COVERAGE}.get(key, {}).get(str(value))
        rows.append({"label": label, "value": f"{value} ({meaning})" if meaning else _text(value)})
    return rows


def _money(value: Any) -> str:
    return f"${value:,.2f}" if isinstance(value, (int, float)) else _text(value)


def _rvu_rows(rvus: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The fee-schedule facts: the global row in full, modifier rows (26, TC) in one line each."""
    rows: list[dict[str, str]] = []
    for r in rvus:
        if r.get("modifier"):
            rows.append({"label": f"With modifier {r['modifier']}",
                         "value": f"total RVU {_text(r.get('nonfacility_total'))} non-facility / "
                                  f"{_text(r.get('facility_total'))} facility; "
                                  f"{_money(r.get('national_payment_nonfacility'))} / "
                                  f"{_money(r.get('national_payment_facility'))}"})
            continue
        status = str(r.get("status") or "")
        days = str(r.get("global_days") or "")
        rows += [
            {"label": "PFS status", "value": f"{status} ({PFS_STATUS[status]})" if status in PFS_STATUS else status},
            {"label": "Global days", "value": f"{days} ({GLOBAL_DAYS[days]})" if days in GLOBAL_DAYS else days},
            {"label": "Work RVU", "value": _text(r.get("work_rvu"))},
            {"label": "Total RVU", "value": f"{_text(r.get('nonfacility_total'))} non-facility, "
                                            f"{_text(r.get('facility_total'))} facility"},
            {"label": "National payment estimate",
             "value": f"{_money(r.get('national_payment_nonfacility'))} non-facility, "
                      f"{_money(r.get('national_payment_facility'))} facility "
                      f"(conversion factor {r.get('conversion_factor')}; before locality adjustment)"},
            {"label": "Fee schedule", "value": _text(r.get("version"))},
        ]
    return [row for row in rows if row["value"]]


def _ncci_rows(ncci: dict[str, Any] | None) -> list[dict[str, str]]:
    rows = []
    for setting, facts in (ncci or {}).items():
        if not isinstance(facts, dict):
            continue
        rows.append({"label": f"NCCI {setting}",
                     "value": f"column 1 in {facts.get('as_column1', 0)} edits, column 2 in "
                              f"{facts.get('as_column2', 0)} edits ({facts.get('version') or 'version not recorded'}); "
                              "CHECK it with the other codes of the claim"})
    return rows


def _mue_rows(mues: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for m in mues or []:
        detail = "; ".join(x for x in (_text(m.get("adjudication")), _text(m.get("rationale"))) if x)
        rows.append({"label": f"MUE {m.get('setting', '')}".strip(),
                     "value": f"{m.get('value')} unit(s) per day" + (f" -- {detail}" if detail else "")
                              + (f" ({m['version']})" if m.get("version") else "")})
    return rows


def _dx_rows(dx: dict[str, Any] | None) -> list[dict[str, str]]:
    """CC/MCC, HCC and the I/OCE edit flags of an ICD-10-CM code, each naming its source."""
    if not dx:
        return []
    rows = []
    cc = dx.get("cc_level")
    if cc:
        rows.append({"label": "CC/MCC", "value": f"{cc['level']} ({cc['meaning']}, {cc['note']}) -- {cc['source']}"})
    hcc = dx.get("hcc")
    if hcc:
        rows.append({"label": "HCC", "value": f"{hcc['hcc']} {hcc['label']} -- {hcc['source']}"})
    for edit in dx.get("edits") or []:
        rows.append({"label": "Edit", "value": f"{edit['meaning']} -- {edit['source']}"})
    return rows


def _related(items: Any) -> list[dict[str, str]]:
    out = []
    for item in items or []:
        if isinstance(item, dict):
            out.append({"code": str(item.get("code", "")), "title": str(item.get("title") or "")})
        elif item:
            out.append({"code": str(item), "title": ""})
    return out


def _on_text(data: dict[str, Any], on: date | None) -> str:
    when = data.get("date") or (on or date.today()).isoformat()
    return f"{when} (today; no date of service given)" if data.get("date_assumed") else when


def card_view(card: Any, on: date | None = None) -> dict[str, Any]:
    """Everything the card partials show, from a CodeCard or its ``to_dict()``.
    Reads the card, never changes it (its lists are the knowledge's rows)."""
    data = card.fields() if hasattr(card, "fields") else dict(card)
    system = data.get("system") or ""
    found = bool(data.get("found"))
    billable, valid = data.get("billable"), data.get("valid_on_date")
    notes = {k: v for k, v in (data.get("notes") or {}).items() if k != "source"}
    if system == "icd10cm" or system == "modifier":
        note_groups = _icd_notes(notes)
        for inherited in data.get("inherited_notes") or []:
            source = f"{inherited.get('code')} {inherited.get('title') or ''}".strip()
            note_groups += _icd_notes(inherited.get("notes") or {}, source)
        facts = []
    else:
        note_groups, facts = [], _hcpcs_facts(notes, data.get("short_title"))
    modifier = data.get("modifier") or {}
    modifier_text = ""
    if modifier:
        modifier_text = f"Modifier {modifier.get('code')}" + (f" ({modifier['title']})" if modifier.get("title") else "") \
            + (f": {modifier['explanation']}" if modifier.get("explanation") else "")
    if billable is True:
        billing = "billable"
    elif billable is False:
        billing = "header, not billable" if system == "icd10cm" else "not billable"
    else:
        billing = ""
    return {
        "input": data.get("input") or data.get("code") or "",
        "code": data.get("code") or data.get("input") or "",
        "system": system,
        "system_label": SYSTEM_LABELS.get(system, "Unknown"),
        "found": found,
        "state": "unknown" if not found else ("warn" if valid is False or billable is False else "ok"),
        "status": data.get("status") or "",
        "title": data.get("title"),
        "licence_note": data.get("licence_note") or "",
        "billing": billing,
        "billable": billable,
        "valid": valid,
        "on": data.get("date") or (on or date.today()).isoformat(),
        # "2026-12-02 (today; no date of service given)" when no date was given: a card
        # never judges "the date of service" it was not told
        "on_text": _on_text(data, on),
        "date_assumed": bool(data.get("date_assumed")),
        "since": data.get("since") or "",
        "successors": [{"code": str(s.get("code", "")), "title": str(s.get("title") or ""),
                        "why": str(s.get("why") or "")} for s in data.get("successors") or []],
        "version": _text(data.get("version")),
        "message": data.get("message") or "",
        "version_warning": data.get("version_warning") or "",
        "notes": note_groups,
        "facts": facts,
        "rvu": _rvu_rows(data.get("rvu") or []),
        "dx": _dx_rows(data.get("dx")),
        "ncci": _ncci_rows(data.get("ncci")),
        "mue": _mue_rows(data.get("mue") or []),
        "modifier": modifier_text,
        "parent": _related([data["parent"]] if data.get("parent") else []),
        "children": _related(data.get("children")),
        "suggestions": _related(data.get("suggestions")),
    }
