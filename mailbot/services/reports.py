"""The reports page: volume per week, time to first reply and to answer
(p50 / p90), per reviewer and per code system, and SLA breaches.

Read-only and bounded by a window of weeks (consultations created in it),
in three queries whatever the window holds: the consultations, their first
human reply (answer, question back or rejection -- not the automatic
acknowledgement), and reviewer names.  Percentiles are nearest-rank, so a
figure is always one that really happened.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from mailbot.models import Consultation, ConsultationState as S, OutboundMessage, Reviewer, utcnow

HUMAN_REPLIES = ("answer", "needs_info", "rejected")
SYSTEM_LABELS = {"icd10cm": "ICD-10-CM", "cpt": "CPT", "hcpcs": "HCPCS", "modifier": "Modifier"}


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Group:
    key: str
    consultations: int = 0
    first_reply_hours: list[float] = field(default_factory=list)
    answer_hours: list[float] = field(default_factory=list)
    sla_breaches: int = 0

    def row(self) -> dict[str, object]:
        def rounded(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return {"key": self.key, "consultations": self.consultations,
                "first_reply_p50_h": rounded(percentile(self.first_reply_hours, 50)),
                "first_reply_p90_h": rounded(percentile(self.first_reply_hours, 90)),
                "answer_p50_h": rounded(percentile(self.answer_hours, 50)),
                "answer_p90_h": rounded(percentile(self.answer_hours, 90)),
                "sla_breaches": self.sla_breaches}


@dataclass
class Report:
    since: datetime
    weeks: int
    sla_hours: int
    volume: list[dict[str, object]]
    overall: dict[str, object]
    per_reviewer: list[dict[str, object]]
    per_system: list[dict[str, object]]


def _hours(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds() / 3600)


def build(session: Session, *, weeks: int = 12, sla_hours: int = 24, now: datetime | None = None) -> Report:
    now = now or utcnow()
    since = now - timedelta(weeks=weeks)
    rows = session.exec(select(Consultation).where(Consultation.created_at >= since)).all()
    ids = [c.id for c in rows]
    first_reply: dict[int, datetime] = {}
    if ids:
        for cid, at in session.exec(select(OutboundMessage.consultation_id, func.min(OutboundMessage.created_at))
                                    .where(OutboundMessage.consultation_id.in_(ids),
                                           OutboundMessage.kind.in_(HUMAN_REPLIES))
                                    .group_by(OutboundMessage.consultation_id)).all():
            first_reply[cid] = at
    names = {r.id: r.name for r in session.exec(select(Reviewer)).all()}
    sla = float(sla_hours)
    overall, reviewers, systems, weekly = Group("all"), {}, {}, {}
    for c in rows:
        year, week, _ = c.created_at.isocalendar()
        weekly[f"{year}-W{week:02d}"] = weekly.get(f"{year}-W{week:02d}", 0) + 1
        groups = [overall]
        if c.approved_by_id:
            name = names.get(c.approved_by_id, f"reviewer {c.approved_by_id}")
            groups.append(reviewers.setdefault(name, Group(name)))
        for system in c.code_systems or ["(no codes)"]:
            label = SYSTEM_LABELS.get(system, system)
            groups.append(systems.setdefault(label, Group(label)))
        reply = first_reply.get(c.id)
        answered = c.answered_at
        open_late = answered is None and c.state not in (S.SENT, S.REJECTED) and _hours(c.created_at, now) > sla
        late = (answered is not None and _hours(c.created_at, answered) > sla) or open_late
        for g in groups:
            g.consultations += 1
            if reply is not None:
                g.first_reply_hours.append(_hours(c.created_at, reply))
            if answered is not None:
                g.answer_hours.append(_hours(c.created_at, answered))
            g.sla_breaches += int(late)
    return Report(since=since, weeks=weeks, sla_hours=sla_hours,
                  volume=[{"week": k, "consultations": v} for k, v in sorted(weekly.items())],
                  overall=overall.row(),
                  per_reviewer=[g.row() for g in sorted(reviewers.values(), key=lambda g: g.key)],
                  per_system=[g.row() for g in sorted(systems.values(), key=lambda g: g.key)])


CSV_COLUMNS = ("section", "key", "consultations", "first_reply_p50_h", "first_reply_p90_h", "answer_p50_h",
               "answer_p90_h", "sla_breaches")


def _cell(value: object) -> object:
    """Spreadsheets run a cell starting with = + - @ as a formula: a reviewer's
    name must never do that."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for v in report.volume:
        writer.writerow(["week", v["week"], v["consultations"], "", "", "", "", ""])
    for section, rows in (("overall", [report.overall]), ("reviewer", report.per_reviewer),
                          ("code_system", report.per_system)):
        for row in rows:
            writer.writerow([section] + [_cell(row[c]) for c in CSV_COLUMNS[1:]])
    return out.getvalue()
