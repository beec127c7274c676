"""Diagnosis edits and groupings: what the edit tables say about ICD-10-CM codes.

Two entry points:

- :func:`dx_facts` -- the flags of one code on a date, for its lookup card:
  CC/MCC (MS-DRG v43), HCC (CMS-HCC V28), and the I/OCE edit flags (age
  range, sex, manifestation, code first, unacceptable as principal);
- :func:`diagnosis_edits` -- the conflicts among the codes of one question:
  age and sex conflicts (when the question states them), a manifestation code
  listed first, a first-listed code unacceptable as principal diagnosis,
  Excludes1 pairs, and "code first" / "use additional code" partners missing.

Every fact carries its source and version, so the reviewer sees where it
comes from.  The rules are the table :data:`RULES` (one function each).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from mailbot.codes.catalogue import Catalogue
from mailbot.codes.facts import facts_of
from mailbot.codes.normalize import ICD10CM, candidates
from mailbot.config import REPO_ROOT
from mailbot.models.codes import CodeEntry, CodeFlag

EXCLUDES1_FILE = REPO_ROOT / "data" / "codesets" / "icd10cm-fy2027" / "fy2027-excludes1.csv"
EXCLUDES1_SOURCE = "ICD-10-CM tabular Excludes1 notes"
EXCLUDES1_VERSION = "FY2027 tabular (fy2027-excludes1.csv)"
TABULAR_SOURCE = "ICD-10-CM tabular note"
FLAG_MEANINGS = {
    "age_range": "age edit: valid only for patients aged {value} (I/OCE)",
    "sex": "sex edit: valid only for sex {value} (I/OCE)",
    "manifestation": "manifestation code: may not be listed first; code the underlying condition first",
    "code_first": "the I/OCE flags it 'code first': the underlying condition must be listed before it",
    "unacceptable_pdx": "unacceptable as principal (first-listed) diagnosis (I/OCE)",
}
SEX_CODES = {"M": "M", "F": "F", "MALE": "M", "FEMALE": "F"}  # what a question may state -> the edit's value
SEX_NAMES = {"M": "male", "F": "female"}
# "(E08-E13)", "(E10.-)", "(F10.2-)", "(J09.X3; J10.2)" inside tabular note text
_CODE = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{0,4})?"
_REF = re.compile(rf"{_CODE}(?:-{_CODE}|-(?![A-Z]\d))?")


@dataclass
class DxConflict:
    kind: str  # age, sex, manifestation_first, unacceptable_principal, excludes1, code_first_missing, ...
    codes: list[str]
    message: str
    source: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _flags(session: Session, codes: list[str], on: date) -> list[CodeFlag]:
    if not codes:
        return []
    return list(session.execute(select(CodeFlag).where(
        CodeFlag.system == ICD10CM, CodeFlag.code.in_(codes), CodeFlag.valid_from <= on,
        or_(CodeFlag.valid_to.is_(None), CodeFlag.valid_to >= on))
        .order_by(CodeFlag.code, CodeFlag.flag, CodeFlag.id)).scalars())


def dx_facts(session: Session, code: str, on: date, knowledge=None) -> dict[str, Any] | None:
    """CC/MCC, HCC and edit flags of one ICD-10-CM code on ``on`` (None when it has none).

    With the cached ``knowledge`` (a lookup card), the flags come from memory
    (:mod:`.facts`) once built, and version names from its catalogue."""
    facts = facts_of(session, knowledge) if knowledge is not None else None
    rows = facts.flags_on(code, on) if facts is not None else _flags(session, [code], on)
    if not rows:
        return None
    catalogue = knowledge.catalogue if knowledge is not None else Catalogue(session)
    out: dict[str, Any] = {"cc_level": None, "hcc": None, "edits": []}
    for row in rows:
        source = catalogue.name(row.version_id) or ""
        if row.flag == "cc_level":
            level, _, exclusion = row.value.partition("|")
            out["cc_level"] = {"level": level, "cc_exclusion_list": exclusion,
                               "meaning": "major complication or comorbidity" if level == "MCC"
                               else "complication or comorbidity",
                               "note": "as a secondary diagnosis, unless excluded by the principal diagnosis",
                               "source": source}
        elif row.flag == "hcc":
            number, _, label = row.value.partition("|")
            out["hcc"] = {"hcc": f"HCC {number}", "label": label, "source": source}
        elif row.flag in FLAG_MEANINGS:
            out["edits"].append({"flag": row.flag, "value": row.value,
                                 "meaning": FLAG_MEANINGS[row.flag].format(value=row.value), "source": source})
    return out


def _icd_codes(codes: list[str]) -> list[str]:
    out = []
    for raw in codes:
        reading = next((c for s, c in candidates(raw) if s == ICD10CM), None)
        if reading and reading not in out:
            out.append(reading)
    return out


def _bare(code: str) -> str:
    return code.replace(".", "").rstrip("-")


def matches(code: str, ref: str) -> bool:
    """Is ``code`` covered by the tabular reference ``ref`` (a code, ``X.-`` or a range)?"""
    bare = _bare(code)
    if "-" in ref.strip("-") and not ref.endswith(".-"):
        low, high = (_bare(x) for x in ref.split("-", 1))
        return low <= bare[:len(low)] and bare[:len(high)] <= high
    return bare.startswith(_bare(ref))


@lru_cache(maxsize=2)
def _excludes1(path: Path) -> dict[str, list[tuple[list[str], str]]]:
    """note code -> [(referenced codes, note text)] from the Excludes1 CSV."""
    table: dict[str, list[tuple[list[str], str]]] = {}
    if not path.is_file():
        return table
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            refs = [r.strip() for r in row["referencedCodes"].split(";") if r.strip()]
            if refs:
                table.setdefault(row["code"], []).append((refs, row["noteText"]))
    return table


def _ancestors(code: str) -> list[str]:
    """The code, its subcategories and its category (notes there apply to it)."""
    bare = code.replace(".", "")
    return [code] + [f"{bare[:3]}.{bare[3:i]}" for i in range(len(bare) - 1, 3, -1)] + ([bare[:3]] if len(bare) > 3 else [])


def _age(ctx: _Context) -> list[DxConflict]:
    if ctx.age is None:
        return []
    out = []
    for row in ctx.flags("age_range"):
        low, high = (int(x) for x in row.value.split("-"))
        if not low <= ctx.age <= high:
            out.append(DxConflict("age", [row.code], f"{row.code} is valid only for patients aged {low} to {high}; "
                                  f"the question gives age {ctx.age}.", "I/OCE age edit", ctx.name(row)))
    return out


def _sex(ctx: _Context) -> list[DxConflict]:
    if not ctx.sex:
        return []
    return [DxConflict("sex", [row.code], f"{row.code} is for {SEX_NAMES.get(row.value, row.value)} patients; "
                       f"the question gives {SEX_NAMES.get(ctx.sex, ctx.sex)}.", "I/OCE sex edit", ctx.name(row))
            for row in ctx.flags("sex") if row.value != ctx.sex]


def _first_listed(ctx: _Context) -> list[DxConflict]:
    if not ctx.codes:
        return []
    first, out = ctx.codes[0], []
    for row in ctx.flags("manifestation"):
        if row.code == first:
            out.append(DxConflict("manifestation_first", [first], f"{first} is a manifestation code: it may not be "
                                  "listed first; list the underlying condition before it.",
                                  "I/OCE manifestation edit", ctx.name(row)))
    for row in ctx.flags("unacceptable_pdx"):
        if row.code == first and not any(c.kind == "manifestation_first" for c in out):
            out.append(DxConflict("unacceptable_principal", [first], f"{first} is listed first but is unacceptable "
                                  "as the principal (first-listed) diagnosis.", "I/OCE unacceptable principal "
                                  "diagnosis edit", ctx.name(row)))
    return out


def _excludes1_pairs(ctx: _Context) -> list[DxConflict]:
    table, out, seen = _excludes1(EXCLUDES1_FILE), [], set()
    for code in ctx.codes:
        for holder in _ancestors(code):
            for refs, text in table.get(holder, []):
                for other in ctx.codes:
                    pair = tuple(sorted((code, other)))
                    if other == code or pair in seen or not any(matches(other, r) for r in refs):
                        continue
                    seen.add(pair)
                    out.append(DxConflict("excludes1", [code, other], f"Excludes1 at {holder}: {text}. {code} and "
                                          f"{other} are not coded together (unless the tabular's exceptions apply).",
                                          EXCLUDES1_SOURCE, EXCLUDES1_VERSION))
    return out


def _partners(ctx: _Context, key: str, kind: str, verb: str) -> list[DxConflict]:
    """One conflict per code and note holder whose note items name codes, none of them given.

    A note's items are alternatives ("code first, if applicable, the underlying
    condition, such as: ..."), so any one referenced code present satisfies it."""
    out = []
    for code in ctx.codes:
        by_holder: dict[str, tuple[list[str], str]] = {}
        for holder, text, version in ctx.notes(code, key):
            by_holder.setdefault(holder, ([], version))[0].append(text)
        for holder, (texts, version) in by_holder.items():
            refs = [r for text in texts for r in _REF.findall(text)]
            if not refs or any(matches(other, r) for other in ctx.codes if other != code for r in refs):
                continue
            shown = "; ".join(texts[:8]) + (f"; and {len(texts) - 8} more" if len(texts) > 8 else "")
            out.append(DxConflict(kind, [code], f"{code}: '{verb}' note at {holder}: {shown} -- none of these "
                                  "codes is among the codes given.", TABULAR_SOURCE, version))
    return out


class _Context:
    def __init__(self, session: Session, codes: list[str], on: date, age: int | None, sex: str | None) -> None:
        self.session, self.codes, self.on, self.age = session, codes, on, age
        self.sex = SEX_CODES.get(sex.strip().upper(), sex.strip().upper()) if sex else None
        self.catalogue = Catalogue(session)
        self.rows = _flags(session, codes, on)
        self._notes: dict[str, list[CodeEntry]] = {}

    def flags(self, flag: str) -> list[CodeFlag]:
        return [r for r in self.rows if r.flag == flag]

    def name(self, row: CodeFlag) -> str:
        return self.catalogue.name(row.version_id) or ""

    def notes(self, code: str, key: str) -> list[tuple[str, str, str]]:
        """``(holder, text, version)`` of the tabular notes ``key`` on the code and its ancestors."""
        holders = _ancestors(code)
        rows = self.session.execute(select(CodeEntry).where(
            CodeEntry.system == ICD10CM, CodeEntry.code.in_(holders), CodeEntry.valid_from <= self.on,
            or_(CodeEntry.valid_to.is_(None), CodeEntry.valid_to >= self.on))).scalars()
        out = []
        for row in rows:
            value = (row.notes or {}).get(key) or []
            for text in value if isinstance(value, list) else [value]:
                out.append((row.code, str(text), self.catalogue.name(row.version_id) or ""))
        return out


RULES: tuple[Callable[[_Context], list[DxConflict]], ...] = (
    _age,
    _sex,
    _first_listed,
    _excludes1_pairs,
    lambda ctx: _partners(ctx, "code_first", "code_first_missing", "Code first"),
    lambda ctx: _partners(ctx, "use_additional", "use_additional_missing", "Use additional code"),
)


def diagnosis_edits(session: Session, codes: list[str], on: date, age: int | None = None,
                    sex: str | None = None) -> list[DxConflict]:
    """The conflicts among the ICD-10-CM ``codes`` of one question (in the order given:
    the first is the first-listed diagnosis).  ``age`` in years; ``sex`` M/F."""
    ctx = _Context(session, _icd_codes(codes), on, age, sex)
    return [conflict for rule in RULES for conflict in rule(ctx)]
