"""The emails of a consultation: acknowledgement, answer, question back, rejection.

Each is a template folder (``templates/email/{ack,answer,needs-info,rejected}/``)
plus a context built here, and goes out in the asker's thread: subject
``Re: <subject> [#Q-1042]``, ``In-Reply-To`` the asker's latest message,
``References`` the thread, our own Message-ID domain and ``X-Loop`` (added
by :func:`mailbot.mail.compose.build`).  Only the acknowledgement is an
automatic reply (RFC 3834 headers); the others carry a reviewer's words.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

from mailbot.config import Settings
from mailbot.drafting.redact import redact
from mailbot.mail.compose import REPLY_MARKER, Envelope, build, render
from mailbot.mail.reflect import reflected
from mailbot.mail.routing import verified_sender
from mailbot.models import Consultation, InboundMessage, Reviewer, utcnow

_PREFIX = re.compile(r"^\s*((re|fwd?|aw|sv|wg)\s*:\s*)+", re.I)
_TOKEN = re.compile(r"\s*\[#Q-\d+\]\s*")

SYSTEM_LABELS = {"icd10cm": "ICD-10-CM", "cpt": "CPT", "hcpcs": "HCPCS Level II", "modifier": "Modifier"}
STATUS_LABELS = {
    "ok": "verified", "unlicensed_descriptor": "verified (CPT descriptor needs an AMA licence)",
    "not_billable": "NOT BILLABLE (header code)", "terminated": "NOT VALID on the date of service",
    "not_yet_valid": "NOT YET VALID on the date of service",
    "icd9_era": "NOT CHECKED: the date of service is before ICD-10-CM (ICD-9-CM era, not covered)",
    "invalid": "NOT FOUND in the code sets", "unknown": "NOT FOUND in the code sets",
    "unrecognised": "not a recognised code",
}
# Without a date of service the codes were checked for the day the answer was
# written; saying "on the date of service" would claim a fact nobody gave.
UNDATED_STATUS_LABELS = STATUS_LABELS | {
    "terminated": "NOT VALID (no longer in the code sets)",
    "not_yet_valid": "NOT YET VALID (not in effect yet)",
}
CPT_LICENCE_NOTE = "CPT descriptor not shown: CPT is licensed by the AMA."
DISCLAIMER = ("This answer is coding guidance based on the documentation described in your message and the "
              "official code sets named above. It is not legal or clinical advice; final code selection "
              "depends on the full medical record and payer policy.")


def reply_subject(consultation: Consultation) -> str:
    """``Re: <original subject> [#Q-n]`` without stacking prefixes or tokens,
    and with any patient data redacted: a subject like "Coding question for
    patient John Smith" is never echoed back (mail subjects travel in the
    clear and land in notification previews)."""
    return _subject_with_token(consultation.subject or "", consultation)


def _subject_with_token(subject: str, consultation: Consultation) -> str:
    subject = _TOKEN.sub(" ", _PREFIX.sub("", subject)).strip()
    subject = redact(subject).text if subject else ""
    return f"Re: {subject or 'Your coding question'} [#{consultation.reference}]"


def _envelope(settings: Settings, consultation: Consultation, inbound: InboundMessage | None, *,
              auto_reply: bool) -> Envelope:
    thread = [consultation.root_message_id, *(consultation.thread_message_ids or [])]
    last = inbound.message_id if inbound is not None and inbound.message_id else (thread[-1] if thread else "")
    references = list(dict.fromkeys(m for m in thread if m))
    return Envelope(
        to=consultation.asker_email,
        to_name=consultation.asker_name if not auto_reply or (inbound is not None and verified_sender(inbound)) else "",
        from_addr=settings.service_address(settings.service.ask_address), from_name=settings.service.name,
        in_reply_to=last, references=references, auto_reply=auto_reply,
        extra_headers={"X-Mailbot-Reference": consultation.reference},
    )


def _base(settings: Settings, consultation: Consultation) -> dict[str, Any]:
    return {
        "service": {"name": settings.service.name,
                    "ask": settings.service_address(settings.service.ask_address)},
        "reference": consultation.reference,
        "reply_subject": reply_subject(consultation),
        "asker_name": consultation.asker_name,
        "reply_marker": REPLY_MARKER,
        "generated_at": utcnow().strftime("%Y-%m-%d %H:%M UTC"),
    }


def _reflected(consultation: Consultation, inbound: InboundMessage | None) -> dict[str, Any]:
    """The asker's name and subject as far as ``mail.reflect`` allows repeating
    them to an address anyone could have forged (all of it for a sender our
    MTA verified)."""
    name, subject = reflected(consultation.asker_name, consultation.subject or "",
                              inbound is not None and verified_sender(inbound))
    return {"asker_name": name, "reply_subject": _subject_with_token(subject or "Your coding question", consultation)}


def ack_message(settings: Settings, consultation: Consultation, inbound: InboundMessage | None,
                instant_facts: dict[str, Any] | None = None) -> EmailMessage:
    """The automatic acknowledgement, with the instant code-set facts when there are any."""
    context = _base(settings, consultation) | _reflected(consultation, inbound) | {
        "sla_hours": settings.web.sla_hours,
        "instant": instant_facts if instant_facts and instant_facts.get("codes") else None}
    return build(render("ack", context), _envelope(settings, consultation, inbound, auto_reply=True),
                 domain=settings.service.domain, kind="ack")


def _status(item: dict[str, Any], labels: dict[str, str]) -> str:
    """The status label, with the date actually used when none was given and what to report instead."""
    label = labels.get(item.get("status", ""), item.get("status") or "unverified")
    if item.get("date_assumed"):
        label = label.replace("on the date of service", "today (no date of service given)")
    instead = [str(s.get("code")) for s in item.get("successors") or [] if isinstance(s, dict)]
    if instead:
        label += "; report instead: " + ", ".join(instead[:8]) + (" ..." if len(instead) > 8 else "")
    return label


def code_rows(verified: list[dict[str, Any]], dated: bool = True) -> list[dict[str, Any]]:
    """The table of cited codes as the asker sees it (never a CPT descriptor
    unless a licensed title came from the knowledge base, never the
    operator's licence instructions).  ``dated``: a date of service was given."""
    labels = STATUS_LABELS if dated else UNDATED_STATUS_LABELS
    rows = []
    for item in verified:
        system = item.get("system") or ""
        title = item.get("title") or ""
        if not title and (system == "cpt" or item.get("licence_note")):
            title = CPT_LICENCE_NOTE
        rows.append({
            "code": item.get("code", ""), "system": SYSTEM_LABELS.get(system, system or "unknown"),
            "title": title, "version": item.get("version") or "not recorded",
            "status": _status(item, labels),
            "ok": bool(item.get("ok")),
        })
    return rows


def answer_message(settings: Settings, consultation: Consultation, inbound: InboundMessage | None,
                   reviewer: Reviewer, body: str, verified: list[dict[str, Any]],
                   ncci: list[dict[str, Any]]) -> EmailMessage:
    context = _base(settings, consultation) | {
        "answer": strip_frame(body, reviewer.name, settings.service.name),
        "codes": code_rows(verified, dated=consultation.date_of_service is not None),
        "ncci": ncci,
        "reviewer": {"name": reviewer.name, "credential": reviewer.credential},
        "date_of_service": consultation.date_of_service.isoformat() if consultation.date_of_service else "",
        "disclaimer": DISCLAIMER,
    }
    return build(render("answer", context), _envelope(settings, consultation, inbound, auto_reply=False),
                 domain=settings.service.domain, kind="answer")


# The template owns the greeting and the signature (the editor shows both
# around the text box).  A greeting or signature typed into the answer as
# well -- by habit, or left by a drafter -- would be doubled, so it is dropped.
# Only a line that is nothing but a greeting: "Hello Maria Lopez,", "Hi there!",
# "Dear Dr. Smith:" (ends in , : or !) or "Hello Maria" (names only).  "Hi, yes:
# report 20610." or "Hello, yes you can bill both" are answers and are kept.
_GREETING = re.compile(r"^\s*(?i:hello|hi|hey|dear|good (?:morning|afternoon|evening)|greetings)"
                       r"(?:(?:\s+[\w.'’-]+){0,4}\s*[,:!]|(?:\s+[A-Z][\w.'’-]*){0,4})\s*$")
_CLOSING = re.compile(r"^\s*(best|kind|warm)?\s*(regards|wishes)|^\s*(thanks|thank you|sincerely|cheers)\b[^\n]{0,20}$",
                      re.I)


def strip_frame(body: str, reviewer_name: str, service_name: str) -> str:
    """``body`` without a leading greeting line and a trailing signature
    (the reviewer's name, "Certified coder, <service>", a closing word)."""
    lines = body.strip().splitlines()
    if len(lines) > 1 and _GREETING.match(lines[0]) and not re.search(r"\d", lines[0]):
        lines = lines[1:]
    signature = {reviewer_name.strip().lower(), f"certified coder, {service_name}".lower()}

    def is_signature(line: str) -> bool:
        text = line.strip().lower()
        return bool(text) and (text in signature or (bool(reviewer_name.strip())
                                                     and text.startswith(reviewer_name.strip().lower() + ",")))

    trimmed = False
    while lines and (not lines[-1].strip() or is_signature(lines[-1])):
        trimmed = trimmed or bool(lines[-1].strip())
        lines.pop()
    if trimmed and len(lines) > 1 and _CLOSING.match(lines[-1]):
        lines.pop()
    return "\n".join(lines).strip() or body.strip()   # never strip an answer down to nothing


def frame(settings: Settings, consultation: Consultation, reviewer: Reviewer) -> dict[str, str]:
    """The greeting and signature the answer template puts around the text,
    as the editor shows them (same words as ``templates/email/answer``)."""
    name = f"{reviewer.name}, {reviewer.credential}" if reviewer.credential else reviewer.name
    return {"greeting": f"Hello {consultation.asker_name}," if consultation.asker_name else "Hello,",
            "signature": f"{name}\nCertified coder, {settings.service.name}"}


def followup_ack_message(settings: Settings, consultation: Consultation,
                         inbound: InboundMessage | None) -> EmailMessage:
    """The short note for a message in a thread we already acknowledged."""
    return build(render("followup-ack", _base(settings, consultation) | _reflected(consultation, inbound)),
                 _envelope(settings, consultation, inbound, auto_reply=True),
                 domain=settings.service.domain, kind="ack")


def needs_info_message(settings: Settings, consultation: Consultation, inbound: InboundMessage | None,
                       reviewer: Reviewer, question: str) -> EmailMessage:
    context = _base(settings, consultation) | {
        "question": question.strip(), "reviewer": {"name": reviewer.name, "credential": reviewer.credential}}
    return build(render("needs-info", context), _envelope(settings, consultation, inbound, auto_reply=False),
                 domain=settings.service.domain, kind="needs_info")


def rejected_message(settings: Settings, consultation: Consultation, inbound: InboundMessage | None,
                     reviewer: Reviewer, reply_text: str) -> EmailMessage:
    context = _base(settings, consultation) | {
        "reply_text": reply_text.strip(), "reviewer": {"name": reviewer.name, "credential": reviewer.credential}}
    return build(render("rejected", context), _envelope(settings, consultation, inbound, auto_reply=False),
                 domain=settings.service.domain, kind="rejected")
