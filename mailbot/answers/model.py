"""The structured answer: coded lines with roles, the rules behind them, what is missing.

Every resolver adds to one :class:`Answer`.  A :class:`Line` is a code the
answer speaks about, with its role (``recommended``, ``alternative``,
``not_recommended``), why, units and modifiers; a :class:`Rule` is a fact or
rule used, with the code set (and version) or guideline it comes from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

RECOMMENDED = "recommended"
ALTERNATIVE = "alternative"
NOT_RECOMMENDED = "not_recommended"
ROLES = (RECOMMENDED, ALTERNATIVE, NOT_RECOMMENDED)


@dataclass
class Line:
    code: str
    system: str
    role: str
    why: str
    title: str = ""
    units: int | None = None
    modifiers: list[str] = field(default_factory=list)
    version: str = ""
    source: str = ""          # the resolver that added it

    @property
    def billed(self) -> str:
        """``99213-25``, ``J1010 x 40 units`` as a coder writes a claim line."""
        text = self.code + "".join(f"-{m}" for m in self.modifiers)
        if self.units is not None:
            text += f" x {self.units} unit{'s' if self.units != 1 else ''}"
        return text


@dataclass
class Rule:
    text: str
    source: str               # e.g. "ICD-10-CM FY2027 tabular, E11.22 use additional code"


@dataclass
class Answer:
    question: str
    date_of_service: date | None = None
    date_note: str = ""                   # how the date was found (stated / assumed from the message date)
    intents: list[dict[str, str]] = field(default_factory=list)   # [{"intent", "trigger"}]
    lines: list[Line] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)          # the extraction, as data
    ask: str = ""                         # ONE specific question when a needed fact is missing
    search_query: str = ""
    system: str = ""                      # the code system the question is about
    confidence: float = 0.0

    # -- building -------------------------------------------------------
    def line(self, code: str) -> Line | None:
        return next((item for item in self.lines if item.code == code), None)

    def add(self, line: Line) -> Line:
        """Add ``line``, or upgrade the existing line for the same code (a
        recommendation wins over an alternative; not-recommended wins over both)."""
        # a discarded-drug line (JW) is its own claim line; otherwise one line per code
        existing = next((item for item in self.lines if item.code == line.code
                         and ("JW" in item.modifiers) == ("JW" in line.modifiers)), None)
        if existing is None:
            self.lines.append(line)
            return line
        rank = {ALTERNATIVE: 0, RECOMMENDED: 1, NOT_RECOMMENDED: 2}
        if rank[line.role] > rank[existing.role]:
            existing.role, existing.why = line.role, line.why
        if line.units is not None:
            existing.units = line.units
        for mod in line.modifiers:
            if mod not in existing.modifiers:
                existing.modifiers.append(mod)
        existing.title = existing.title or line.title
        existing.version = existing.version or line.version
        return existing

    def rule(self, text: str, source: str) -> None:
        if not any(r.text == text for r in self.rules):
            self.rules.append(Rule(text, source))

    def ask_once(self, question: str) -> None:
        """Only the first missing fact is asked: one specific question."""
        if not self.ask:
            self.ask = question

    # -- reading --------------------------------------------------------
    def with_role(self, role: str) -> list[Line]:
        return [item for item in self.lines if item.role == role]

    @property
    def recommended(self) -> list[Line]:
        return self.with_role(RECOMMENDED)

    @property
    def modifiers(self) -> list[str]:
        seen: dict[str, None] = {}
        for item in self.recommended:
            for mod in item.modifiers:
                seen.setdefault(mod, None)
        for mod in self.facts.get("recommended_modifiers", []):
            seen.setdefault(mod, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["date_of_service"] = self.date_of_service.isoformat() if self.date_of_service else None
        return data
