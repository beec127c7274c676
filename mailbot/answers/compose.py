"""An answer as text a coder keeps: the answer first, then why, then the facts.

No greeting or signature (the reply template adds them), no internal names,
no header or invalid code except in a line that says not to report it.
"""

from __future__ import annotations

from mailbot.answers.kb import SYSTEM_NAMES
from mailbot.answers.model import ALTERNATIVE, NOT_RECOMMENDED, Answer, Line

MAX_ALTERNATIVES = 6


def lead(result: Answer) -> str:
    """The first sentence: what to report (and what not)."""
    parts = []
    recommended = result.recommended
    if recommended:
        parts.append("Report " + ", ".join(_billed(line) for line in recommended))
    elif result.modifiers:
        parts.append("Use modifier " + " / ".join(result.modifiers))
    ended = [line for line in result.with_role(NOT_RECOMMENDED)]
    for line in ended[:3]:
        parts.append(f"do not report {line.code} ({_short(line.why)})")
    if not parts:
        return result.ask or "The code sets do not answer this question on their own."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def render(result: Answer) -> str:
    lines = [lead(result), ""]
    why = [f"- {line.billed}: {line.why}." for line in result.recommended]
    why += [f"- Do not report {line.code}: {line.why}." for line in result.with_role(NOT_RECOMMENDED)]
    if why:
        lines += ["Why:"] + why + [""]
    alternatives = result.with_role(ALTERNATIVE)[:MAX_ALTERNATIVES]
    if alternatives:
        lines.append("Alternatives, if the record documents them:")
        lines += [f"- {line.code}: {line.title or SYSTEM_NAMES.get(line.system, line.system)}." for line in alternatives]
        lines.append("")
    facts = [f"- {rule.text.rstrip('.')} ({rule.source.strip()})." for rule in result.rules]
    titled = [f"- {line.code}: {line.title} ({line.version or SYSTEM_NAMES.get(line.system, '')})."
              for line in result.recommended if line.title]
    if facts or titled:
        lines.append("Facts from the code sets and rules used:")
        lines += list(dict.fromkeys(titled + facts))
        lines.append("")
    lines.append(result.date_note[0].upper() + result.date_note[1:] + ".")
    if result.ask:
        lines += ["", "To answer precisely we need one more fact:", f"- {result.ask}"]
    return "\n".join(lines).strip()


def _billed(line: Line) -> str:
    text = line.billed
    if line.units is not None and line.title:
        text += f" ({line.title})"
    return text


def _short(why: str) -> str:
    return why.split(";")[0].rstrip(".")
