"""Code cards: what the ``_partials/card`` templates show for one code.

:func:`card_view` turns a :class:`mailbot.codes.lookup.CodeCard` (its
``to_dict()``) into plain rows of label and value, so the text and HTML
partials, the email and the reviewer web page all show the same facts in the
same order.  Every value comes from the knowledge base; nothing is written
here except labels.  Keys this module does not know yet are still shown,
with a label made from the key, rather than silently dropped.
"""

from __future__ import annotations

from datetime import date
from typing import Any

SYSTEM_LABELS = {
    "icd10cm": "ICD-10-CM", "hcpcs": "HCPCS Level II", "cpt": "CPT", "modifier": "Modifier",
}

# ICD-10-CM tabular notes, in the order coders read them.
NOTE_LABELS = (
    ("inclusion_terms", "Inclusion terms"),
    ("includes", "Includes"),
    ("excludes1", "Excludes1 (never together)"),
    ("excludes2", "Excludes2 (not included here; both may apply)"),
    ("code_first", "Code first"),
    ("use_additional", "Use additional code"),
    ("code_also", "Code also"),
    ("notes", "Notes"),
    ("seventh_note", "7th character"),
)
# Facts from other files (HCPCS dates, PFS RVUs ...), label by key.
FACT_LABELS = {
    "long_description": "Long descriptor", "short_description": "Short descriptor", "short_title": "Short descriptor",
    "added": "Added", "added_date": "Added", "action": "Action", "action_code": "Action",
    "action_date": "Action date", "effective": "Effective", "effective_date": "Effective",
    "terminated": "Terminated", "termination_date": "Terminated", "coverage": "Coverage", "pricing": "Pricing",
    "betos": "BETOS", "status": "PFS status", "status_meaning": "PFS status meaning", "global_days": "Global days",
    "work_rvu": "Work RVU", "nonfacility_pe_rvu": "Non-facility PE RVU", "facility_pe_rvu": "Facility PE RVU",
    "mp_rvu": "Malpractice RVU", "nonfacility_total": "Non-facility total RVU", "facility_total": "Facility total RVU",
    "conversion_factor": "Conversion factor", "payment_nonfacility": "National payment, non-facility",
    "payment_facility": "National payment, facility", "nonfacility_payment": "National payment, non-facility",
    "facility_payment": "National payment, facility", "version": "Version",
}
_SKIP_FACTS = {"version_id", "id", "code", "modifier", "description"}


def label_for(key: str) -> str:
    return FACT_LABELS.get(key) or key.replace("_", " ").capitalize()


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


def _rows(data: Any) -> list[dict[str, str]]:
    """A dict of facts -> [{label, value}], empty values left out."""
    if not isinstance(data, dict):
        return [{"label": "", "value": _text(data)}] if data not in (None, "", []) else []
    rows = []
    for key, value in data.items():
        if key in _SKIP_FACTS or value in (None, "", [], {}):
            continue
        if key.startswith("payment") or key.endswith("_payment"):
            value = f"${value:,.2f}" if isinstance(value, (int, float)) else value
        rows.append({"label": label_for(key), "value": _text(value)})
    return rows


def _notes(notes: dict[str, Any]) -> list[dict[str, Any]]:
    """ICD-10-CM notes as [{label, lines}] in reading order, then any others."""
    out: list[dict[str, Any]] = []
    known = {key for key, _ in NOTE_LABELS} | {"seventh_characters", "seventh_character"}
    for key, label in NOTE_LABELS:
        lines = notes.get(key)
        if lines:
            out.append({"label": label, "lines": [str(x) for x in (lines if isinstance(lines, list) else [lines])]})
    seventh = notes.get("seventh_characters")
    if isinstance(seventh, dict) and seventh:
        out.append({"label": "7th characters", "lines": [f"{k} = {v}" for k, v in seventh.items()]})
    one = notes.get("seventh_character")
    if isinstance(one, dict) and one.get("char"):
        out.append({"label": "7th character", "lines": [f"{one['char']} = {one.get('meaning', '')}"]})
    for key, value in notes.items():
        if key not in known and value not in (None, "", [], {}):
            lines = value if isinstance(value, list) else [_text(value)]
            out.append({"label": label_for(key), "lines": [_text(v) for v in lines]})
    return out


def _related(items: Any) -> list[dict[str, str]]:
    """Parent/children/suggestions: strings or {code, title} dicts -> dicts."""
    out = []
    for item in items or []:
        if isinstance(item, dict):
            out.append({"code": str(item.get("code", "")), "title": str(item.get("title") or "")})
        elif item:
            out.append({"code": str(item), "title": ""})
    return out


def card_view(card: Any, on: date | None = None) -> dict[str, Any]:
    """Everything the card partials show, from a CodeCard or its ``to_dict()``."""
    data = card.to_dict() if hasattr(card, "to_dict") else dict(card)
    system = data.get("system") or ""
    found = bool(data.get("found"))
    billable = data.get("billable")
    valid = data.get("valid_on_date")
    if not found:
        state = "unknown"
    elif valid is False or billable is False:
        state = "warn"
    else:
        state = "ok"
    if billable is True:
        billing = "billable"
    elif billable is False:
        billing = "header, not billable (use a more specific code)" if system == "icd10cm" else "not billable"
    else:
        billing = ""
    parent = data.get("parent")
    notes = data.get("notes") if isinstance(data.get("notes"), dict) else {}
    return {
        "input": data.get("input") or data.get("code") or "",
        "code": data.get("code") or data.get("input") or "",
        "system": system,
        "system_label": SYSTEM_LABELS.get(system, system.upper() or "Unknown"),
        "found": found,
        "state": state,
        "title": data.get("title"),
        "licence_note": data.get("licence_note") or "",
        "billing": billing,
        "billable": billable,
        "valid": valid,
        "on": str(data.get("date") or data.get("on") or (on.isoformat() if on else date.today().isoformat())),
        "version": _text(data.get("version")),
        "notes": _notes(notes),
        "facts": _rows(data.get("hcpcs") or data.get("details") or {}),
        "rvu": _rows(data.get("rvu") or {}),
        "ncci": _rows(data.get("ncci")) if not isinstance(data.get("ncci"), list) else
                [{"label": "", "value": _text(x)} for x in data["ncci"]],
        "mue": _rows(data.get("mue")) if not isinstance(data.get("mue"), list) else
               [{"label": "", "value": _text(x)} for x in data["mue"]],
        "modifier": data.get("modifier_explanation") or data.get("explanation") or "",
        "parent": _related([parent] if parent and not isinstance(parent, list) else parent),
        "children": _related(data.get("children")),
        "suggestions": _related(data.get("suggestions")),
        "message": data.get("message") or "",
    }
