"""The code knowledge base as OpenAI tool calls, for the LLM drafter.

The model gets the engine's proposed answer and may check or extend it with
these tools (a bounded number of rounds, see ``llm.max_tool_rounds``):

- ``lookup(codes)`` -- the cards of codes on the date of service;
- ``search(query, system)`` -- codes for described words;
- ``check(codes, setting)`` -- NCCI pairs and MUEs among codes billed together;
- ``successors(code)`` -- what to report instead of an ended or header code;
- ``index(code | term)`` -- the ICD-10-CM Alphabetic Index (and the Table of
  Drugs and Chemicals, the Neoplasm Table) paths leading to a code, or the
  index lines whose path holds a term; offered only once the operator has
  imported the index (``mailbot codes import --index``).

Results are compact JSON of public code-set facts; no question text goes into
them, so no PHI leaves through a tool.  Every call is kept for the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

MAX_RESULT_CHARS = 6_000

SPECS: list[dict[str, Any]] = [
    {"type": "function", "function": {
        "name": "lookup", "description": "Look codes up (ICD-10-CM, HCPCS Level II, CPT by number, modifiers) on "
        "the date of service: title, billable, valid on the date, notes, code-set version.",
        "parameters": {"type": "object", "properties": {
            "codes": {"type": "array", "items": {"type": "string"}, "maxItems": 20}},
            "required": ["codes"]}}},
    {"type": "function", "function": {
        "name": "search", "description": "Search the code sets for codes matching described words.",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string"},
            "system": {"type": "string", "enum": ["icd10cm", "hcpcs", "cpt"]}},
            "required": ["query"]}}},
    {"type": "function", "function": {
        "name": "check", "description": "Check codes billed together on the date: NCCI procedure-to-procedure "
        "pairs (with modifier indicator) and MUEs, for the practitioner or hospital setting.",
        "parameters": {"type": "object", "properties": {
            "codes": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
            "setting": {"type": "string", "enum": ["practitioner", "hospital"]}},
            "required": ["codes"]}}},
    {"type": "function", "function": {
        "name": "successors", "description": "What to report instead of a deleted, terminated or header code "
        "on the date of service, with why and any unit conversion.",
        "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}},
]
INDEX_SPEC: dict[str, Any] = {"type": "function", "function": {
    "name": "index", "description": "The ICD-10-CM Alphabetic Index, Table of Drugs and Chemicals and Neoplasm "
    "Table: the index paths leading to a code (give code), or the index lines whose path holds every word of "
    "a term (give term), e.g. 'Fracture, radius, distal end -> S52.50-'.",
    "parameters": {"type": "object", "properties": {
        "code": {"type": "string"}, "term": {"type": "string"}}}}}
INDEX_KIND = "icd10cm_index"
MAX_INDEX_LINES = 12


@dataclass
class ToolBox:
    """Runs the tools against the knowledge base; ``read`` opens a read-only session."""

    read: Callable[[], Any]          # a context manager yielding a Session
    on: date
    calls: list[dict[str, Any]] = field(default_factory=list)
    _has_index: bool | None = field(default=None, repr=False)

    @property
    def has_index(self) -> bool:
        """Is the Alphabetic Index imported (asked once per toolbox)?"""
        if self._has_index is None:
            from mailbot.codes.catalogue import Catalogue

            with self.read() as session:
                self._has_index = Catalogue(session).has(INDEX_KIND)
        return self._has_index

    @property
    def specs(self) -> list[dict[str, Any]]:
        return SPECS + [INDEX_SPEC] if self.has_index else SPECS

    @property
    def names(self) -> list[str]:
        return [spec["function"]["name"] for spec in self.specs]

    def run(self, name: str, arguments: str) -> str:
        """The JSON result of one tool call (an error object for a bad call, never an exception)."""
        try:
            args = json.loads(arguments or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
            with self.read() as session:
                result = _TOOLS[name](session, self.on, **args) if name in self.names else \
                    {"error": f"unknown tool {name!r}; use {', '.join(self.names)}"}
        except (ValueError, TypeError) as exc:
            result = {"error": f"bad arguments for {name}: {exc}"}
        text = json.dumps(result, default=str, ensure_ascii=False, separators=(",", ":"))
        if len(text) > MAX_RESULT_CHARS:
            text = text[:MAX_RESULT_CHARS] + "...(truncated)"
        self.calls.append({"tool": name, "arguments": arguments, "result_chars": len(text)})
        return text


def _lookup(session, on: date, codes: list[str]) -> Any:
    from mailbot.codes.lookup import lookup
    from mailbot.drafting.context import slim_card

    return [slim_card(card.to_dict()) for card in lookup(session, [str(c) for c in codes][:20], on=on)]


def _search(session, on: date, query: str, system: str | None = None) -> Any:
    from mailbot.codes.search import SearchError, search

    try:
        return [hit.to_dict() for hit in search(session, str(query)[:300], system=system, limit=8)]
    except SearchError as exc:
        return {"error": str(exc)}


def _check(session, on: date, codes: list[str], setting: str = "practitioner") -> Any:
    from mailbot.codes.edits import CheckError, check

    try:
        result = check(session, [str(c) for c in codes][:20], on=on, setting=setting).to_dict()
    except CheckError as exc:
        return {"error": str(exc)}
    return {"pairs": result["pairs"], "notes": result["notes"],
            "mue": {c["code"]: c["mue"] for c in result["codes"] if c.get("mue")}}


def _successors(session, on: date, code: str) -> Any:
    from mailbot.answers.kb import KB
    from mailbot.answers.successors import successors

    kb = KB(session, on)
    card = kb.card(str(code))
    if not card.get("found"):
        return {"error": f"{code} is not in the loaded code sets"}
    return {"code": card["code"], "status": card.get("status"), "message": card.get("message"),
            "successors": [{"code": s.code, "title": s.title, "why": s.why,
                            "units_per_old_unit": s.units_per_old_unit}
                           for s in successors(kb, card["code"], card.get("system") or "")[:12]]}


def _index(session, on: date, code: str = "", term: str = "") -> Any:
    from sqlalchemy import select

    from mailbot.codes.alphabetic import LABELS, index_paths
    from mailbot.codes.normalize import ICD10CM, candidates
    from mailbot.models.code_index import IndexTerm

    code, term = str(code or "").strip(), str(term or "").strip()
    if not code and not term:
        return {"error": "give a code or a term"}
    out: dict[str, Any] = {}
    if code:
        reading = next((c for system, c in candidates(code) if system == ICD10CM), None)
        if reading is None:
            return {"error": f"{code} is not shaped like an ICD-10-CM code"}
        out["code"], out["paths"] = reading, index_paths(session, reading, limit=MAX_INDEX_LINES)
    if term:
        words = [w for w in term.replace(",", " ").split() if len(w) > 1][:8]
        query = select(IndexTerm.kind, IndexTerm.path, IndexTerm.code, IndexTerm.column, IndexTerm.see)
        for word in words:
            query = query.where(IndexTerm.path.ilike(f"%{word}%"))
        rows = session.execute(query.order_by(IndexTerm.path).limit(MAX_INDEX_LINES)).all() if words else []
        out["term"] = term
        out["lines"] = [f"{LABELS.get(kind, kind)}: {path}{', ' + column if column else ''} -> "
                        + (code_ or f"see {see}") for kind, path, code_, column, see in rows]
    return out


_TOOLS: dict[str, Callable[..., Any]] = {"lookup": _lookup, "search": _search, "check": _check,
                                         "successors": _successors, "index": _index}
