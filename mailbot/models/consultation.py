"""Consultations: a question thread, its drafts and the audit trail.

State machine (moves are conditional updates on ``state``; see
``mailbot.services.consultations``)::

    received -> acknowledged -> drafting -> awaiting_review -> approved -> sent
                                   |              |  \\-> needs_info -> (asker replies) -> drafting
                                   v              v
                                 failed        rejected

A follow-up from the asker reopens a finished consultation at ``received``.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from mailbot.models.base import json_field, utcnow


class ConsultationState(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    DRAFTING = "drafting"
    AWAITING_REVIEW = "awaiting_review"
    APPROVED = "approved"
    SENT = "sent"
    NEEDS_INFO = "needs_info"
    REJECTED = "rejected"
    FAILED = "failed"


FINAL_STATES = frozenset({ConsultationState.SENT, ConsultationState.REJECTED})


class Consultation(SQLModel, table=True):
    # The review queue reads "state = ? ORDER BY waiting_since, id": this index
    # serves it without sorting, however long the queue (see bench/web.py).
    __table_args__ = (Index("ix_consultation_queue", "state", "waiting_since", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(default="", max_length=2000)
    asker_email: str = Field(max_length=512, index=True)
    asker_name: str = Field(default="", max_length=512)
    state: str = Field(default=ConsultationState.RECEIVED, max_length=32, index=True)
    version: int = 1                                   # optimistic lock for edits
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    state_changed_at: datetime = Field(default_factory=utcnow, index=True)
    waiting_since: datetime = Field(default_factory=utcnow, index=True)  # for the SLA clock
    date_of_service: date | None = None
    code_systems: list[str] = json_field()             # systems of the codes mentioned/cited
    flags: int = 0                                     # count of verification problems
    # what the answer engine read the question as: [{"intent", "trigger"}], in table order
    intents: list[dict[str, Any]] = json_field()
    claimed_by_id: int | None = Field(default=None, foreign_key="reviewer.id", index=True)
    claimed_at: datetime | None = None
    approved_by_id: int | None = Field(default=None, foreign_key="reviewer.id")
    answered_at: datetime | None = None
    last_inbound_id: int | None = None
    root_message_id: str = Field(default="", max_length=998)   # first Message-ID of the thread
    thread_message_ids: list[str] = json_field()       # every Message-ID seen or sent in the thread
    failure_reason: str = ""
    attempts: int = 0
    has_phi: bool = False                              # patient data was found in the thread (redactor)
    new_reply_at: datetime | None = None               # the asker wrote again; cleared by a reviewer's action

    @property
    def reference(self) -> str:
        return f"Q-{self.id}"


class Draft(SQLModel, table=True):
    """One version of the answer: from the LLM, the offline drafter or a reviewer."""

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    source: str = Field(max_length=16)                 # llm | offline | reviewer
    body: str = ""
    cited_codes: list[dict[str, Any]] = json_field()   # [{code, system, role, verdict, ...}]
    questions: list[str] = json_field()                # what to ask back when facts are missing
    confidence: float | None = None
    model: str = Field(default="", max_length=255)
    redacted_question: str = ""                        # exactly what the LLM saw
    prompt: list[dict[str, Any]] = json_field()        # messages sent, for audit
    response: str = ""                                 # raw model output, for audit
    redactions: list[dict[str, Any]] = json_field()    # what was redacted (kinds and spans)
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="reviewer.id")


class AuditEvent(SQLModel, table=True):
    """Who did what, when; before/after text for edits."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id", index=True)
    actor: str = Field(max_length=512)                 # reviewer email or "system"
    action: str = Field(max_length=64, index=True)
    before: str = ""
    after: str = ""
    detail: dict[str, Any] = json_field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class ConsultationNote(SQLModel, table=True):
    """An internal note on a consultation: reviewers only, never sent."""

    __tablename__ = "consultation_note"

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    author_id: int = Field(foreign_key="reviewer.id")
    body: str = Field(max_length=10_000)
    created_at: datetime = Field(default_factory=utcnow)


class Macro(SQLModel, table=True):
    """A canned response admins manage; ``{asker_name}``-style variables are
    filled in when a reviewer inserts it (see mailbot.services.macros)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    body: str = Field(max_length=20_000)
    active: bool = True
    updated_by_id: int | None = Field(default=None, foreign_key="reviewer.id")
    updated_at: datetime = Field(default_factory=utcnow)
