"""Normalising job and subscription fields as people and files write them.

Credentials, states and work modes come in many spellings ("ccs-p", "Texas",
"work from home"); matching needs one form.  The duplicate keys are hashes of
the normalised apply URL and of employer + title + location.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Coding and HIM credentials (AAPC, AHIMA); longest first so "CCS-P" wins over "CCS".
CREDENTIALS = (
    "CCS-P", "CPC-A", "CPC-P", "CPC", "CCS", "CCA", "COC", "CIC", "CRC", "CPB", "CPMA", "CPCO",
    "CDIP", "CCDS", "CDEO", "RHIT", "RHIA", "CHDA", "CHPS", "CEMC", "CGSC", "CIRCC",
)
_CRED_RE = re.compile(r"(?<![A-Za-z])(" + "|".join(re.escape(c) for c in CREDENTIALS) + r")(?![A-Za-z])", re.I)

STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "PR": "Puerto Rico", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}
_STATE_BY_NAME = {name.lower(): code for code, name in STATES.items()}

_MODE_WORDS = {
    "remote": "remote", "work from home": "remote", "wfh": "remote", "telecommute": "remote",
    "telecommuting": "remote", "telework": "remote", "virtual": "remote",
    "hybrid": "hybrid",
    "onsite": "onsite", "on-site": "onsite", "on site": "onsite", "in office": "onsite",
    "in-office": "onsite", "office": "onsite",
}


def credentials_in(text: str) -> list[str]:
    """Credentials named in ``text``, canonical upper case, order kept, no duplicates."""
    seen: list[str] = []
    for m in _CRED_RE.finditer(text or ""):
        cred = m.group(1).upper()
        if cred not in seen:
            seen.append(cred)
    return seen


def state_code(text: str) -> str:
    """``"tx"``, ``"Texas"`` -> ``"TX"``; anything else -> ``""``."""
    value = (text or "").strip().strip(".").strip()
    if value.upper() in STATES:
        return value.upper()
    return _STATE_BY_NAME.get(value.lower(), "")


def work_mode(text: str, default: str = "onsite") -> str:
    """Work mode named in ``text`` (remote beats hybrid beats on-site)."""
    lowered = (text or "").lower()
    found = {mode for word, mode in _MODE_WORDS.items() if re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", lowered)}
    for mode in ("remote", "hybrid", "onsite"):
        if mode in found:
            return mode
    return default


def split_location(text: str) -> tuple[str, str]:
    """``"Austin, TX"`` / ``"Austin, Texas 78701"`` -> ``("Austin", "TX")``."""
    parts = [p.strip() for p in re.split(r"[,;/]", text or "") if p.strip()]
    city, state = "", ""
    for part in parts:
        words = re.sub(r"\b\d{5}(-\d{4})?\b", "", part).strip()
        if not words or words.lower() in ("usa", "us", "united states") or work_mode(words, "") :
            continue
        code = state_code(words)
        if code and not state:
            state = code
        elif not city:
            city = words
    return city, state


_MONEY = re.compile(r"\$?\s*(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*([kK])?")


def salary_range(text: str) -> tuple[int | None, int | None, str]:
    """``"$55,000 - $65,000"`` -> ``(55000, 65000, "year")``; ``"$24/hr"`` -> ``(24, 24, "hour")``."""
    if not text:
        return None, None, ""
    amounts = []
    for m in _MONEY.finditer(str(text)):
        value = float(m.group(1).replace(",", ""))
        if m.group(2):
            value *= 1000
        amounts.append(int(round(value)))
    if not amounts:
        return None, None, ""
    low, high = min(amounts[:2]), max(amounts[:2])
    period = "hour" if re.search(r"(/\s*h(ou)?r|hourly|per hour|an hour)", str(text), re.I) or high < 500 else "year"
    return low, high, period


def experience_years(text: str) -> int | None:
    m = re.search(r"(\d{1,2})\s*\+?\s*(?:-\s*\d{1,2}\s*)?(?:years?|yrs?)", text or "", re.I)
    return int(m.group(1)) if m else None


def normalise_url(url: str) -> str:
    """Lower-case scheme/host, drop fragments, tracking parameters and trailing slashes."""
    url = (url or "").strip()
    if not url:
        return ""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith(("utm_", "ref", "source", "gclid", "fbclid"))]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower() or "https", parts.netloc.lower(), path, urlencode(sorted(query)), ""))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _fold(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", (text or "").lower()).split())


def url_key(apply_url: str) -> str:
    """Duplicate key from the apply URL (``""`` when there is none)."""
    norm = normalise_url(apply_url)
    return _digest("url", norm) if norm else ""


def identity_key(employer: str, title: str, city: str, state: str, mode: str) -> str:
    """Duplicate key from employer + title + location."""
    return _digest("id", _fold(employer), _fold(title), _fold(city), state.upper(), mode)
