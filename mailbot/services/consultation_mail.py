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
    "invalid": "NOT FOUND in the code sets", "unknown": "NOT FOUND in the code sets",
    "unrecognised": "not a recognised code",
}
CPT_LICENCE_NOTE = "CPT descriptor not shown: CPT is licensed by the AMA."
DISCLAIMER = ("This answer is coding guidance based on the documentation described in your message and the "
              "official code sets named above. It is not legal or clinical advice; final code selection "
              "depends on the full medical record and payer policy.")


def reply_subject(consultation: Consultation) -> str:
    """``Re: <original subject> [#Q-n]`` without stacking prefixes or tokens."""
    return _subject_with_token(consultation.subject or "", consultation)


def _subject_with_token(subject: str, consultation: Consultation) -> str:
    subject = _TOKEN.sub(" ", _PREFIX.sub("", subject)).strip() or "Your coding question"
    return f"Re: {subject} [#{consultation.reference}]"


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


def ack_message(settings: Settings, consultation: Consultation, inbound: InboundMessage | None) -> EmailMessage:
    """The automatic acknowledgement.  It goes to an address anyone could have
    forged, so it repeats the asker's name and subject only as far as
    ``mail.reflect`` allows (all of it for a sender our MTA verified)."""
    name, subject = reflected(consultation.asker_name, consultation.subject or "",
                              inbound is not None and verified_sender(inbound))
    context = _base(settings, consultation) | {
        "sla_hours": settings.web.sla_hours, "asker_name": name,
        "reply_subject": _subject_with_token(subject or "Your coding question", consultation)}
    return build(render("ack", context), _envelope(settings, consultation, inbound, auto_reply=True),
                 domain=settings.service.domain, kind="ack")


def code_rows(verified: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table of cited codes as the asker sees it (never a CPT descriptor
    unless a licensed title came from the knowledge base)."""
    rows = []
    for item in verified:
        system = item.get("system") or ""
        title = item.get("title") or ""
        if not title:
            title = item.get("licence_note") or (CPT_LICENCE_NOTE if system == "cpt" else "")
        rows.append({
            "code": item.get("code", ""), "system": SYSTEM_LABELS.get(system, system or "unknown"),
            "title": title, "version": item.get("version") or "not recorded",
            "status": STATUS_LABELS.get(item.get("status", ""), item.get("status") or "unverified"),
            "ok": bool(item.get("ok")),
        })
    return rows


def answer_message(settings: Settings, consultation: Consultation, inbound: InboundMessage | None,
                   reviewer: Reviewer, body: str, verified: list[dict[str, Any]],
                   ncci: list[dict[str, Any]]) -> EmailMessage:
    context = _base(settings, consultation) | {
        "answer": body.strip(),
        "codes": code_rows(verified),
        "ncci": ncci,
        "reviewer": {"name": reviewer.name, "credential": reviewer.credential},
        "date_of_service": consultation.date_of_service.isoformat() if consultation.date_of_service else "",
        "disclaimer": DISCLAIMER,
    }
    return build(render("answer", context), _envelope(settings, consultation, inbound, auto_reply=False),
                 domain=settings.service.domain, kind="answer")


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
