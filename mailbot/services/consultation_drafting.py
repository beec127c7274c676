"""The drafting step of a consultation: redact -> context -> draft -> verify.

Runs outside any transaction (an LLM call may take a minute) and returns a
:class:`DraftResult`; :mod:`mailbot.services.consultations` stores it with a
conditional state change.  When the configured LLM is unavailable (after the
client's own retries) or answers garbage, the reviewer still gets a draft:
the offline one, labelled with the reason, and the failure is recorded.
"""

from __future__ import annotations

import email
import logging
from dataclasses import dataclass, field
from datetime import date
from email.parser import BytesHeaderParser
from typing import Any

from sqlmodel import Session, select

from mailbot.context import Context
from mailbot.drafting import offline
from mailbot.drafting.context import DraftContext, build_context
from mailbot.drafting.llm import LlmClient, LlmError
from mailbot.drafting.redact import redact
from mailbot.drafting.verify import Verification, claim_setting, verify_answer
from mailbot.mail.limits import MAX_QUESTION_CHARS, header_block
from mailbot.mail.mailpolicy import POLICY
from mailbot.models import Consultation, InboundMessage, OutboundMessage, OutboundState

log = logging.getLogger(__name__)
HISTORY_CHARS = 2_000


@dataclass
class DraftResult:
    source: str                          # llm | offline
    body: str
    cited: list[dict[str, Any]]          # verified rows (see drafting.verify)
    questions: list[str]
    confidence: float | None
    model: str
    redacted_question: str
    redactions: list[dict[str, Any]]
    prompt: list[dict[str, Any]] = field(default_factory=list)
    response: str = ""
    date_of_service: date | None = None
    verification: Verification = field(default_factory=Verification)
    llm_failure: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    intents: list[dict[str, str]] = field(default_factory=list)   # what the engine read the question as


def question_text(inbound: InboundMessage | None, consultation: Consultation) -> str:
    subject = (inbound.subject if inbound is not None else "") or consultation.subject
    body = (inbound.text or inbound.full_text) if inbound is not None else ""
    if len(body) > MAX_QUESTION_CHARS:
        # The drafter reads the question's start; the reviewer sees it all.
        body = body[:MAX_QUESTION_CHARS] + "\n[... question cut at %d characters for drafting]" % MAX_QUESTION_CHARS
    return f"Subject: {subject}\n\n{body}".strip()


def thread_history(session: Session, consultation: Consultation, latest_id: int | None) -> list[dict[str, str]]:
    """Earlier messages of the thread, oldest first, redacted: the asker's
    messages and what we sent (answers and questions back)."""
    items: list[tuple[Any, str, str]] = []
    for row in session.exec(select(InboundMessage).where(
            InboundMessage.consultation_id == consultation.id).order_by(InboundMessage.id)).all():
        if row.id != latest_id:
            items.append((row.received_at, "asker", row.text or row.full_text))
    for row in session.exec(select(OutboundMessage).where(
            OutboundMessage.consultation_id == consultation.id,
            OutboundMessage.kind.in_(["answer", "needs_info"]),
            OutboundMessage.state == OutboundState.SENT).order_by(OutboundMessage.id)).all():
        items.append((row.created_at, "reviewer", _text_part(row.raw)))
    items.sort(key=lambda item: item[0])
    return [{"who": who, "text": redact(text[:HISTORY_CHARS]).text} for _, who, text in items if text.strip()]


def message_date(inbound: InboundMessage | None) -> date | None:
    """The question's Date header (else when it arrived): the date of service when none is stated."""
    if inbound is None:
        return None
    try:
        # Headers only: parsing the whole MIME tree again for one header cost
        # 0.6 s on a 490-part message, on the thread that drafts (issue 17, point 15).
        header = BytesHeaderParser(policy=POLICY).parsebytes(header_block(inbound.raw or b"")).get("Date")
        if header is not None and getattr(header, "datetime", None) is not None:
            return header.datetime.date()
    except (TypeError, ValueError, IndexError):
        pass  # a malformed Date header: fall back to the arrival time
    return inbound.received_at.date() if inbound.received_at else None


def _text_part(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=POLICY)
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def make_draft(ctx: Context, consultation_id: int, *, force_offline: bool = False) -> DraftResult:
    """Draft an answer for the consultation's latest question."""
    with ctx.db.read() as session:
        consultation = session.get(Consultation, consultation_id)
        inbound = session.get(InboundMessage, consultation.last_inbound_id) if consultation.last_inbound_id else None
        history = thread_history(session, consultation, inbound.id if inbound else None)
        redaction = redact(question_text(inbound, consultation))
        on = consultation.date_of_service or redaction.date_of_service
        context = build_context(session, redaction.text, on=on, history=history,
                                search_limit=min(5, ctx.settings.commands.search_limit),
                                max_codes=ctx.settings.commands.max_codes,
                                message_date=message_date(inbound))
        # a date the question states becomes the consultation's; one assumed from the
        # Date header stays an assumption (said in the draft), not a date of service
        if on is None and str((context.engine.get("facts") or {}).get("date_source", "")).startswith(
                ("stated", "in text")):
            on = context.date_of_service

    result = _llm_or_offline(ctx, context, force_offline)
    result.redacted_question = redaction.text
    result.redactions = redaction.summary()
    result.date_of_service = on
    result.context = context.to_dict()
    result.intents = context.intents
    with ctx.db.read() as session:
        result.verification = verify_answer(session, result.cited, result.body, on,
                                            setting=claim_setting(redaction.text))
    result.cited = result.verification.codes
    return result


def _llm_or_offline(ctx: Context, context: DraftContext, force_offline: bool) -> DraftResult:
    settings = ctx.settings.llm
    failure, prompt, response = "", [], ""
    if settings.base_url and not force_offline:
        client = LlmClient(settings)
        try:
            from mailbot.drafting.tools import ToolBox

            toolbox = ToolBox(ctx.db.read, context.date_of_service or date.today())
            answer = client.draft(context.question, context.to_prompt_text(), tools=toolbox)
            out = answer.output
            return DraftResult("llm", out.answer, [c.model_dump() for c in out.cited_codes], out.questions,
                               out.confidence, answer.model, "", [], answer.prompt, answer.response)
        except LlmError as exc:
            log.warning("LLM drafting failed, falling back to the offline drafter: %s", exc)
            failure, prompt, response = str(exc), exc.prompt, exc.response
        finally:
            client.close()
    composed = offline.draft(context, llm_failure=failure)  # the failure goes in the metadata, not the text
    return DraftResult("offline", composed["answer"], composed["cited_codes"], composed["questions"],
                       composed["confidence"], "offline", "", [], prompt, response, llm_failure=failure)
