"""Find the codes mentioned in free text (an email body, a draft answer).

Conservative on purpose: a ZIP code, a year, a phone number, a dollar amount,
``vitamin B12`` or ``HbA1c`` must not become a code.  Returns canonical forms
(see :mod:`mailbot.codes.normalize`) in the order first mentioned, without
duplicates; a modifier attached to a CPT/HCPCS code stays attached
(``99213-25``).  Nothing here checks the code exists -- that is
:func:`mailbot.codes.validate.verify`.
"""

from __future__ import annotations

import re

from mailbot.codes.normalize import normalize

# One alternation, tried left to right at each position.
_TOKEN = re.compile(
    r"""
    (?<![\w$.\-/])                              # not glued to a word, $, ., -, /
    (?:
        (?P<icd_dot>[A-Za-z]\d[0-9A-Za-z]\.[0-9A-Za-z]{1,4})       # E11.22, s52.521a
      | (?P<hcpcs>[A-Va-v]-?\d{4})                                 # J1030, J-1030
      | (?P<cpt>\d{4}[FTU]|\d{5})                                  # 99213, 0001F, 0042T
      | (?P<icd>[A-Z]\d{2}[0-9A-Z]{0,4})                           # I10, E1122 (upper case only)
    )
    (?:-(?P<mod>[0-9A-Za-z]{2}))?                                  # attached modifier
    (?![\w$%]|\.\d|-\d)                          # not followed by more digits, decimals, ZIP+4
    """,
    re.VERBOSE,
)

# Code-shaped words that are not codes in running text.
_NOT_CODES = {"B12", "B6", "D3", "K2", "Q10", "T3", "T4", "E2", "A1C"}
_ZIP_BEFORE = re.compile(r"(?:\b[A-Z]{2}|zip(?:\s*code)?:?)\s*$", re.IGNORECASE)
_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR".split()
)
_MONEY_BEFORE = re.compile(r"(?:\$|usd|dollars?)\s*$", re.IGNORECASE)
_PHONE_AROUND = re.compile(r"(?:\(\d{3}\)\s*|\d{3}[-.\s])$")


def find_codes(text: str) -> list[str]:
    """Codes mentioned in ``text``, canonical, first-mention order, no duplicates."""
    seen: dict[str, None] = {}
    for m in _TOKEN.finditer(text or ""):
        raw = m.group(0)
        if m.group("mod") and m.group("icd_dot"):
            continue  # "E11.22-25" is not a thing
        base = raw[: m.start("mod") - m.start()] if m.group("mod") else raw
        if base.upper() in _NOT_CODES:
            continue
        before = text[max(0, m.start() - 12) : m.start()]
        if m.group("cpt") and not _looks_like_cpt(before, base):
            continue
        found = normalize(raw if m.group("mod") and not m.group("icd") else base)
        if not found:
            continue
        seen.setdefault(found[1], None)
    return list(seen)


def _looks_like_cpt(before: str, digits: str) -> bool:
    if _MONEY_BEFORE.search(before) or _PHONE_AROUND.search(before):
        return False
    zip_ctx = _ZIP_BEFORE.search(before)
    if zip_ctx and (zip_ctx.group(0).strip().upper() in _STATES or "zip" in zip_ctx.group(0).lower()):
        return False
    return True
