"""Turn the forms people type into canonical codes.

``e11.22``, ``E1122`` -> ICD-10-CM ``E11.22``; ``J-1030``, ``j1030`` -> HCPCS
``J1030``; `` 99213 `` -> CPT ``99213``; ``-25`` / ``LT`` -> modifier; a code
with a modifier attached (``99213-25``) keeps it as ``99213-25``.

A letter and four digits without a dot (``E1122``, ``J1030``) fits both HCPCS
and ICD-10-CM; :func:`normalize` gives the likelier reading and
:func:`candidates` every reading, in order, so a lookup can try them against
the imported sets.  No database is used here.
"""

from __future__ import annotations

import re

ICD10CM = "icd10cm"
HCPCS = "hcpcs"
CPT = "cpt"
MODIFIER = "modifier"

# HCPCS Level II codes start with these letters (CMS record layout).
HCPCS_LETTERS = frozenset("ABCEGHJKLMPQRSTV")

_ICD = re.compile(r"^([A-Z])(\d)([0-9A-Z])(?:\.?([0-9A-Z]{1,4}))?$")
_HCPCS = re.compile(r"^([A-V])(\d{4})$")
_CPT = re.compile(r"^(\d{4}[0-9FTUM])$")
_MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
_WITH_MODIFIER = re.compile(r"^(.+?)[-\s]([0-9A-Z]{2})$")


def _squash(text: str) -> str:
    s = text.strip().upper().replace("\u2010", "-").replace("\u2011", "-").replace("\u2013", "-")
    s = s.strip(" .,;:()[]{}\"'")
    # "J-1030", "J 1030": a dash or space right after the letter is noise
    s = re.sub(r"^([A-Z])[-\s]+(\d)", r"\1\2", s)
    return s


def _icd(s: str) -> str | None:
    m = _ICD.match(s)
    if not m:
        return None
    letter, d1, c3, rest = m.groups()
    head = f"{letter}{d1}{c3}"
    if rest:
        if len(rest) + 3 > 7:
            return None
        return f"{head}.{rest}"
    return head


def candidates(text: str) -> list[tuple[str, str]]:
    """Every plausible ``(system, canonical)`` reading of ``text``, likeliest first."""
    s = _squash(text or "")
    if not s:
        return []
    if s.startswith("-") and _MODIFIER.match(s[1:]):
        return [(MODIFIER, s[1:])]
    s = s.lstrip("-")
    m = _WITH_MODIFIER.match(s)
    if m and "-" in s:
        base, mod = m.groups()
        inner = [c for c in candidates(base) if c[0] in (CPT, HCPCS)]
        if inner:
            return [(system, f"{code}-{mod}") for system, code in inner]
    s = s.replace(" ", "")
    out: list[tuple[str, str]] = []
    if _CPT.match(s):
        out.append((CPT, s))
    if _HCPCS.match(s):
        icd = _icd(s)
        if s[0] in HCPCS_LETTERS:
            out.append((HCPCS, s))
            if icd:
                out.append((ICD10CM, icd))
        elif icd:
            out.append((ICD10CM, icd))
        return out
    if "." in s or _ICD.match(s):
        icd = _icd(s)
        if icd:
            out.append((ICD10CM, icd))
    if not out and _MODIFIER.match(s):
        out.append((MODIFIER, s))
    return out


# Letters typed where a digit belongs: O for 0, I / L for 1, S for 5, B for 8, Z for 2.
_DIGIT_SLIPS = str.maketrans({"O": "0", "I": "1", "L": "1", "S": "5", "B": "8", "Z": "2"})


def digit_slips(text: str) -> list[tuple[str, str]]:
    """Readings of ``text`` with letters that look like digits read as digits, for "did you mean".

    ``J103O`` (letter O) -> ``[("hcpcs", "J1030"), ...]``; the first character
    (the code's letter) is kept.  Empty when nothing changes."""
    s = _squash(text or "").replace(" ", "")
    if len(s) < 4:
        return []
    fixed = s[0] + s[1:].translate(_DIGIT_SLIPS)
    if fixed == s:
        return []
    # an ICD-10-CM code keeps letters after its 3rd character (S52.521A, E11.A), so those stay
    icd = s[0] + s[1:3].translate(_DIGIT_SLIPS) + s[3:]
    readings = candidates(fixed) + ([r for r in candidates(icd) if r[0] == ICD10CM] if icd != s else [])
    return list(dict.fromkeys(r for r in readings if r not in candidates(s)))


def normalize(text: str) -> tuple[str, str] | None:
    """``(system_guess, canonical_code)`` for a typed code, or None if it is not code-shaped."""
    found = candidates(text)
    return found[0] if found else None


def split_modifier(code: str) -> tuple[str, str]:
    """``"99213-25"`` -> ``("99213", "25")``; a code without one -> ``(code, "")``."""
    if "-" in code:
        base, _, mod = code.rpartition("-")
        return base, mod
    return code, ""


def icd_undotted(code: str) -> str:
    return code.replace(".", "")
