"""The offline drafter: a deterministic draft from knowledge-base facts only.

Used when no LLM is configured (the embedded default) and as the fallback
when the configured one is unavailable, so the reviewer always has a start.
It states facts -- what each mentioned code is, whether it is billable on the
date of service, NCCI pairs and MUEs among the codes, modifier guidance,
search candidates for described conditions -- and asks back for what is
missing.  It never reasons beyond the facts, and its draft says so in a
first line the reviewer sees (and is expected to replace).
"""

from __future__ import annotations

from typing import Any

from mailbot.drafting.context import DraftContext, base_code

LABEL = "[Offline draft: composed from the code knowledge base without an LLM. Review and rewrite before sending.]"
LLM_DOWN_LABEL = "[LLM unavailable: {reason}. This offline draft was composed from the code knowledge base instead.]"

SYSTEM_NAMES = {"icd10cm": "ICD-10-CM", "cpt": "CPT", "hcpcs": "HCPCS Level II", "modifier": "modifier"}


def draft(context: DraftContext, *, llm_failure: str = "") -> dict[str, Any]:
    """Compose ``{"answer", "cited_codes", "confidence", "questions"}`` from ``context``."""
    lines = [LLM_DOWN_LABEL.format(reason=llm_failure) if llm_failure else LABEL, ""]
    cited: list[dict[str, str]] = []
    questions: list[str] = []

    if context.cards:
        lines.append("What the code sets say about the codes in your question"
                     + (f" (date of service {context.date_of_service.isoformat()}):" if context.date_of_service else ":"))
        for card in context.cards:
            lines.append("- " + describe_card(card))
            if card.get("found"):
                cited.append({"code": card.get("code") or card.get("input", ""), "role": "mentioned"})
        lines.append("")

    for pair in ncci_pairs(context.check):
        lines.append("- " + describe_pair(pair))
    for mue in mues(context.check):
        lines.append(f"- MUE for {mue.get('code')}: {mue.get('value')} unit(s) per day"
                     + (f" ({mue['indicator']})" if mue.get("indicator") else "") + ".")
    if context.check and (ncci_pairs(context.check) or mues(context.check)):
        lines.append("")

    if context.modifiers:
        lines.append("Modifier guidance:")
        for mod, text in context.modifiers.items():
            lines.append(f"- {mod}: {text}")
        lines.append("")

    if not context.cards and context.search_hits:
        lines.append(f"Codes that may match \"{context.search_query}\" (candidates to confirm against the record):")
        for hit in context.search_hits[:5]:
            title = hit.get("title") or "descriptor requires an AMA CPT licence"
            lines.append(f"- {hit.get('code')} ({SYSTEM_NAMES.get(hit.get('system', ''), hit.get('system', ''))}): {title}")
            cited.append({"code": hit.get("code", ""), "role": "candidate"})
        lines.append("")

    if not context.cards and not context.search_hits:
        lines.append("The knowledge base found no codes or matching descriptors in this question.")
        questions.append("Which codes are you considering, or what exactly was documented?")
    if context.date_of_service is None:
        questions.append("What is the date of service? Code validity depends on it.")
    if questions:
        lines.append("To answer precisely we need:")
        lines.extend(f"- {q}" for q in questions)

    return {"answer": "\n".join(lines).strip(), "cited_codes": cited, "confidence": 0.3 if cited else 0.1,
            "questions": questions}


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
