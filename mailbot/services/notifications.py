"""Notices to reviewers: an item was assigned to them, or its asker replied.

A notice is plain text with the reference, the subject (redacted: notices
travel in the clear) and a link -- never the question, a draft or a note.
It goes only to a reviewer who has not turned notices off
(``Reviewer.notify_by_mail``) and never to whoever caused it.  The row is
stored without a consultation id, so a reply to a notice can never be
threaded into the asker's consultation; it is marked as an automatic
message (RFC 3834), so auto-responders stay quiet.
"""

from __future__ import annotations

from email.message import EmailMessage

from sqlmodel import Session

from mailbot.config import Settings
from mailbot.drafting.redact import redact
from mailbot.mail.compose import Envelope, build, render
from mailbot.models import Consultation, Reviewer
from mailbot.services import Poke
from mailbot.services.delivery import queue_message

EVENTS = {
    "assigned": ("assigned to you", "was assigned to you{by}."),
    "asker_replied": ("the asker replied", "has a new reply from the asker; it is back in the queue with your claim."),
}


def notice_message(settings: Settings, reviewer: Reviewer, consultation: Consultation, event: str,
                   by: str = "") -> EmailMessage:
    headline, sentence = EVENTS[event]
    base = settings.service.public_url.rstrip("/")
    context = {
        "reference": consultation.reference, "headline": headline,
        "sentence": sentence.format(by=f" by {by}" if by else ""),
        "subject": redact(consultation.subject or "").text or "no subject",
        "reviewer_name": reviewer.name, "service_name": settings.service.name,
        "url": f"{base}/consultations/{consultation.id}", "account_url": f"{base}/account",
    }
    envelope = Envelope(to=reviewer.email, to_name=reviewer.name,
                        from_addr=settings.service_address(settings.service.ask_address),
                        from_name=settings.service.name, auto_reply=True,
                        extra_headers={"X-Mailbot-Reference": consultation.reference})
    return build(render("reviewer-notice", context), envelope, domain=settings.service.domain, kind="notice")


def queue_notice(session: Session, settings: Settings, consultation: Consultation, reviewer_id: int | None,
                 event: str, *, actor_id: int | None = None, by: str = "") -> list[Poke]:
    """Queue a notice for ``reviewer_id`` in the caller's transaction; returns the send poke (or nothing)."""
    if reviewer_id is None or reviewer_id == actor_id:
        return []
    reviewer = session.get(Reviewer, reviewer_id)
    if reviewer is None or not reviewer.active or not reviewer.notify_by_mail:
        return []
    row = queue_message(session, notice_message(settings, reviewer, consultation, event, by), kind="notice")
    return [Poke("send_outbound", row.id)]
