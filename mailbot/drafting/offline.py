"""The offline drafter: a deterministic draft from the answer engine, without an LLM.

Used when no LLM is configured (the embedded default) and as the fallback
when the configured one is unavailable, so the reviewer always has a start.
The draft is the engine's answer (:mod:`mailbot.answers`): it leads with
what to report, then why, then the facts and rules used, and asks ONE
specific question when a needed fact is missing.  It carries no greeting or
signature (the reply template adds them) and no "offline draft" label: that
the draft is offline is in its metadata (``source``, ``offline``, and the
LLM failure when there was one), where the reviewer sees it.
"""

from __future__ import annotations

from typing import Any

from mailbot.drafting.context import DraftContext, base_code

# Kept for drafts stored before the label moved to the metadata: approval
# refuses a body that still carries it (see verify.approval_problems).
LABEL = "[Offline draft: composed from the code knowledge base without an LLM. Review and rewrite before sending.]"
LLM_DOWN_LABEL = "[LLM unavailable: {reason}. This offline draft was composed from the code knowledge base instead.]"
LABEL_PREFIXES = ("[Offline draft:", "[LLM unavailable:")

SYSTEM_NAMES = {"icd10cm": "ICD-10-CM", "cpt": "CPT", "hcpcs": "HCPCS Level II", "modifier": "modifier"}


def draft(context: DraftContext, *, llm_failure: str = "") -> dict[str, Any]:
    """Compose ``{"answer", "cited_codes", "confidence", "questions", "offline", "llm_failure"}``."""
    from mailbot.answers.compose import render

    result = context.engine_answer
    if result is None:
        return {"answer": "The question could not be read.", "cited_codes": [], "confidence": 0.05,
                "questions": ["Which codes are you considering, or what exactly was documented?"],
                "offline": True, "llm_failure": llm_failure}
    cited = [{"code": line.code, "role": line.role} for line in result.lines]
    return {"answer": render(result), "cited_codes": cited, "confidence": result.confidence,
            "questions": [result.ask] if result.ask else [], "offline": True, "llm_failure": llm_failure}


def describe_card(card: dict[str, Any]) -> str:
    code = card.get("code") or card.get("input", "?")
    system = SYSTEM_NAMES.get(card.get("system") or "", card.get("system") or "unknown system")
    if not card.get("found"):
        suggestions = ", ".join(str(s.get("code", s) if isinstance(s, dict) else s) for s in (card.get("suggestions") or [])[:3])
        return f"{card.get('input', code)}: not found in the loaded code sets" + (f" (did you mean {suggestions}?)" if suggestions else ".")
    title = card.get("title") or card.get("licence_note") or "descriptor requires an AMA CPT licence"
    parts = [f"{code} ({system}{', ' + str(card['version']) if card.get('version') else ''}): {title}"]
    if card.get("billable") is False:
        parts.append("not billable (a header; a more specific code is required)")
    if card.get("valid_on_date") is False:
        parts.append(f"NOT valid on {card.get('date')} (today; no date of service given)" if card.get("date_assumed")
                     else "NOT valid on the date of service")
    if card.get("status") not in (None, "ok", "unlicensed_descriptor") and card.get("message"):
        parts.append(str(card["message"]).rstrip("."))
    instead = [s for s in card.get("successors") or [] if isinstance(s, dict)]
    if instead:
        parts.append("report instead: " + ", ".join(f"{s.get('code')} {s.get('title') or ''}".strip()
                                                    for s in instead[:8])
                     + f" ({instead[0].get('why')})")
    rvus = [r for r in (card.get("rvu") or []) if isinstance(r, dict)]
    rvu = next((r for r in rvus if not r.get("modifier")), rvus[0] if rvus else None)
    if rvu:
        if rvu.get("global_days"):
            parts.append(f"global period {rvu['global_days']}")
        if rvu.get("work_rvu") is not None:
            parts.append(f"work RVU {rvu['work_rvu']}")
        if rvu.get("national_payment_nonfacility"):
            parts.append(f"national Medicare payment about ${rvu['national_payment_nonfacility']} (non-facility"
                         + (f", {rvu['version']}" if rvu.get("version") else "") + ")")
    return "; ".join(parts) + "."


def ncci_pairs(check: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not check:
        return []
    # the other setting's pairs too: their messages name the table and setting
    others = [p for o in check.get("other_settings") or [] for p in o.get("pairs") or []]
    return list(check.get("pairs") or check.get("ncci") or []) + others


def mues(check: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not check:
        return []
    return [{"code": entry.get("code"), "value": entry["mue"].get("value"),
             "indicator": entry["mue"].get("adjudication") or ""}
            for entry in check.get("codes") or [] if isinstance(entry.get("mue"), dict)]


def describe_pair(pair: dict[str, Any]) -> str:
    if pair.get("message"):
        return str(pair["message"]) + (f" Rationale: {pair['rationale']}." if pair.get("rationale") else "")
    col1 = pair.get("column1") or pair.get("column_1")
    col2 = pair.get("column2") or pair.get("column_2")
    indicator = pair.get("modifier_indicator", pair.get("modifier"))
    meaning = pair.get("modifier_meaning") or {
        "0": "no modifier allows both", "1": "a modifier may allow both when clinically appropriate",
        "9": "not applicable"}.get(str(indicator), "")
    text = f"NCCI edit: {col1} (column 1) with {col2} (column 2); modifier indicator {indicator}"
    if meaning:
        text += f" ({meaning})"
    if pair.get("rationale"):
        text += f"; rationale: {pair['rationale']}"
    return text + "."


def cited_base_codes(cited: list[dict[str, str]]) -> list[str]:
    return [base_code(c["code"]) for c in cited if c.get("code")]
