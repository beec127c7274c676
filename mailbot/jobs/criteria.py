"""What a subscriber asked for, from the words they typed.

``SUBSCRIBE JOBS remote CPC weekly`` and "remote CPC jobs in Texas, daily"
both become criteria a matcher can use::

    {"work_modes": ["remote"], "credentials": ["CPC"], "states": ["TX"],
     "cities": [], "specialties": []}

``SUBSCRIBE UPDATES E08-E13`` / ``J codes`` / ``chapter 4`` become code
ranges and prefixes.  Words that were not understood are returned too, so the
confirmation email can say plainly what was ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mailbot.jobs import fields

# ICD-10-CM chapters (FY2026 tabular): number -> first and last category.
ICD10CM_CHAPTERS = {
    1: ("A00", "B99"), 2: ("C00", "D49"), 3: ("D50", "D89"), 4: ("E00", "E89"), 5: ("F01", "F99"),
    6: ("G00", "G99"), 7: ("H00", "H59"), 8: ("H60", "H95"), 9: ("I00", "I99"), 10: ("J00", "J99"),
    11: ("K00", "K95"), 12: ("L00", "L99"), 13: ("M00", "M99"), 14: ("N00", "N99"), 15: ("O00", "O9A"),
    16: ("P00", "P96"), 17: ("Q00", "Q99"), 18: ("R00", "R99"), 19: ("S00", "T88"), 20: ("V00", "Y99"),
    21: ("Z00", "Z99"), 22: ("U00", "U85"),
}
_ROMAN = {r: i for i, r in enumerate(
    "I II III IV V VI VII VIII IX X XI XII XIII XIV XV XVI XVII XVIII XIX XX XXI XXII".split(), start=1)}

# Specialty words people use, and the canonical name matched against postings.
SPECIALTIES = {
    "inpatient": "inpatient", "outpatient": "outpatient", "profee": "professional fee",
    "pro fee": "professional fee", "professional fee": "professional fee", "e/m": "E/M",
    "radiology": "radiology", "cardiology": "cardiology", "oncology": "oncology",
    "orthopedic": "orthopedic", "orthopedics": "orthopedic", "surgery": "surgery", "surgical": "surgery",
    "emergency": "emergency", "anesthesia": "anesthesia", "risk adjustment": "risk adjustment",
    "hcc": "risk adjustment", "cdi": "CDI", "audit": "audit", "auditing": "audit", "auditor": "audit",
    "pathology": "pathology", "pediatrics": "pediatrics", "behavioral health": "behavioral health",
    "home health": "home health", "dermatology": "dermatology", "gastroenterology": "gastroenterology",
    "urology": "urology", "ob/gyn": "OB/GYN", "denials": "denials", "billing": "billing",
}
_DAILY = re.compile(r"\b(daily|every\s+day|each\s+day)\b", re.I)
_WEEKLY = re.compile(r"\b(weekly|every\s+week|each\s+week|once\s+a\s+week)\b", re.I)
_MODE = re.compile(r"\b(remote|work\s+from\s+home|wfh|telecommut\w*|hybrid|on-?\s?site|in[- ]office)\b", re.I)
# Two-letter state codes that are also English words count only right after "in" or a comma.
_AMBIGUOUS_STATES = {"IN", "OR", "ME", "OK", "HI", "DE", "LA", "MA", "PA", "OH", "AL", "ID", "CO", "MD", "MO"}
_STOP = {
    "jobs", "job", "a", "an", "the", "for", "in", "and", "or", "me", "please", "positions", "position",
    "coder", "coders", "coding", "medical", "openings", "roles", "role", "send", "with", "of", "near",
    "updates", "update", "codes", "code", "changes", "to", "on", "at", "subscribe", "any", "all",
}
_RANGE = re.compile(r"\b([A-Z]\d[0-9A-Z])(?:\.?[0-9A-Z]{0,4})?\s*(?:-|\u2013|to|through)\s*([A-Z]\d[0-9A-Z])(?:\.?[0-9A-Z]{0,4})?\b", re.I)
_CATEGORY = re.compile(r"\b([A-Z]\d[0-9A-Z](?:\.?[0-9A-Z]{1,4})?)\b")
_LETTER = re.compile(r"\b([A-Z])[- ]?codes?\b", re.I)
_CHAPTER = re.compile(r"\bchapter\s+(\d{1,2}|[IVX]{1,5})\b", re.I)
_SYSTEMS = {"icd-10-cm": "icd10cm", "icd-10": "icd10cm", "icd10": "icd10cm", "icd": "icd10cm", "hcpcs": "hcpcs", "cpt": "cpt"}


@dataclass
class Request:
    kind: str                                   # jobs | updates
    criteria: dict[str, Any]
    frequency: str                              # daily | weekly
    summary: str                                # the criteria in words
    ignored: list[str] = field(default_factory=list)


def parse_request(text: str, default_frequency: str = "weekly") -> Request:
    """``"JOBS remote CPC weekly"``, ``"remote CPC jobs in Texas, daily"``,
    ``"UPDATES E08-E13"`` -> :class:`Request`."""
    text = " ".join((text or "").split())
    kind = "jobs"
    m = re.match(r"^(code[- ]?set\s+updates|code\s+updates|updates|jobs)\b[:\s]*", text, re.I)
    if m:
        kind = "updates" if "update" in m.group(1).lower() else "jobs"
        text = text[m.end():]
    frequency = "daily" if _DAILY.search(text) else "weekly" if _WEEKLY.search(text) else default_frequency
    rest = _WEEKLY.sub(" ", _DAILY.sub(" ", text))
    if kind == "updates":
        criteria, rest = _code_criteria(rest)
        summary = describe_updates(criteria)
    else:
        criteria, rest = _job_criteria(rest)
        summary = describe_jobs(criteria, frequency)
    ignored = [w for w in re.findall(r"[A-Za-z][A-Za-z/+-]*", rest) if w.lower() not in _STOP]
    return Request(kind=kind, criteria=criteria, frequency=frequency, summary=summary, ignored=ignored)


def _job_criteria(text: str) -> tuple[dict[str, Any], str]:
    modes = []
    for m in _MODE.finditer(text):
        mode = fields.work_mode(m.group(1))
        if mode not in modes:
            modes.append(mode)
    text = _MODE.sub(" ", text)
    credentials = fields.credentials_in(text)
    for cred in credentials:
        text = re.sub(rf"(?<![A-Za-z]){re.escape(cred)}(?![A-Za-z])", " ", text, flags=re.I)
    specialties = []
    for word, canonical in sorted(SPECIALTIES.items(), key=lambda kv: -len(kv[0])):
        pattern = rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])"
        if re.search(pattern, text, re.I):
            if canonical not in specialties:
                specialties.append(canonical)
            text = re.sub(pattern, " ", text, flags=re.I)
    states, cities = [], []
    for name, code in sorted(((n, c) for c, n in fields.STATES.items()), key=lambda nc: -len(nc[0])):
        pattern = rf"\b{re.escape(name)}\b"
        if re.search(pattern, text, re.I):
            states.append(code)
            text = re.sub(pattern, " ", text, flags=re.I)
    for m in re.finditer(r"(?:(?<=\bin\s)|(?<=,\s)|(?<=,)|^|(?<=\s))([A-Z]{2})\b", text):
        code = m.group(1)
        if code in fields.STATES and code not in states:
            before = text[:m.start()].rstrip().lower()
            if code not in _AMBIGUOUS_STATES or before.endswith((" in", ",")) or before == "in":
                states.append(code)
    text = re.sub(r"\b(" + "|".join(states) + r")\b", " ", text) if states else text
    name = r"[A-Z][a-zA-Z.'-]+(?:\s+[A-Z][a-zA-Z.'-]+){0,2}"
    for m in re.finditer(rf"\b(?:in|near|around)\s+({name}(?:\s*(?:,|\bor\b|\band\b)\s*{name})*)", text):
        for city in re.split(r"\s*(?:,|\bor\b|\band\b)\s*", m.group(1)):
            city = city.strip()
            if city and city.lower() not in _STOP and city not in cities:
                cities.append(city)
    for city in cities:
        text = text.replace(city, " ")
    criteria = {"work_modes": modes, "credentials": credentials, "states": states, "cities": cities,
                "specialties": specialties}
    return criteria, text


def _code_criteria(text: str) -> tuple[dict[str, Any], str]:
    ranges: list[list[str]] = []
    prefixes: list[str] = []
    systems: list[str] = []
    for m in _CHAPTER.finditer(text):
        raw = m.group(1).upper()
        number = int(raw) if raw.isdigit() else _ROMAN.get(raw, 0)
        if number in ICD10CM_CHAPTERS:
            ranges.append(list(ICD10CM_CHAPTERS[number]))
    text = _CHAPTER.sub(" ", text)
    for m in _RANGE.finditer(text):
        lo, hi = m.group(1).upper(), m.group(2).upper()
        ranges.append([min(lo, hi), max(lo, hi)])
    text = _RANGE.sub(" ", text)
    for m in _LETTER.finditer(text):
        prefixes.append(m.group(1).upper())
    text = _LETTER.sub(" ", text)
    for m in _CATEGORY.finditer(text):
        code = m.group(1).upper().replace(".", "")
        if code not in prefixes:
            prefixes.append(code)
    text = _CATEGORY.sub(" ", text)
    for word, system in _SYSTEMS.items():
        if re.search(rf"(?<![A-Za-z0-9-]){re.escape(word)}(?![A-Za-z0-9-])", text, re.I):
            if system not in systems:
                systems.append(system)
            text = re.sub(rf"(?<![A-Za-z0-9-]){re.escape(word)}(?![A-Za-z0-9-])", " ", text, flags=re.I)
    return {"ranges": ranges, "prefixes": prefixes, "systems": systems}, text


def describe_jobs(criteria: dict[str, Any], frequency: str) -> str:
    modes = " or ".join(criteria.get("work_modes") or []) or "any"
    parts = [f"{modes} jobs" if modes != "any" else "jobs"]
    if criteria.get("credentials"):
        parts.append("for " + "/".join(criteria["credentials"]))
    if criteria.get("specialties"):
        parts.append("in " + ", ".join(criteria["specialties"]))
    states = [fields.STATES.get(s, s) for s in criteria.get("states") or []]
    if criteria.get("cities"):
        parts.append("located in " + " or ".join(criteria["cities"]) + (f" ({' or '.join(states)})" if states else ""))
    elif states:
        parts.append("located in " + " or ".join(states))
    return " ".join(parts) + f", {frequency}"


def describe_updates(criteria: dict[str, Any]) -> str:
    scope = [f"{lo}-{hi}" for lo, hi in criteria.get("ranges", [])]
    scope += [f"{p} codes" if len(p) == 1 else p for p in criteria.get("prefixes", [])]
    systems = {"icd10cm": "ICD-10-CM", "hcpcs": "HCPCS", "cpt": "CPT"}
    named = [systems[s] for s in criteria.get("systems", [])]
    what = ", ".join(scope) if scope else "all codes"
    return f"code-set changes for {what}" + (f" ({', '.join(named)})" if named else "")
