"""Building and queueing one job digest, exactly once.

:func:`send_digest` takes a claimed :class:`DigestRun` (see ``schedule``):
one subscriber, one period, one section per subscription due then.  For each
section it finds the open jobs matching that subscription that opened since
that subscription's last digest (a job an earlier section listed is named,
not listed again), renders ``templates/email/job-digest/`` and queues the
email -- in one transaction that also moves every section's
``last_digest_at`` on and the run pending -> sent with a conditional
update.  A second worker running the same run (a retry, a re-poke after a
crash) either sees it finished or loses that update and rolls back its copy.

Rendering is the cost that grows with subscribers (see ``bench/digest.py``),
so each job's card (``job.txt``, ``job.html`` with ``card.css`` inlined) is
rendered once per process and reused by every digest that lists it; the
per-subscriber shell carries its few styles inline, so it skips
``compose.render``'s inliner, which would re-parse every 30 KB digest to
inline CSS that is already inline.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import css_inline
from markupsafe import Markup

from sqlalchemy import update
from sqlmodel import Session, func, select

from mailbot.config import Settings
from mailbot.context import Context
from mailbot.jobs import links
from mailbot.jobs.matching import JobIndex
from mailbot.jobs.digest_wire import Wire, digest_wire
from mailbot.mail.compose import ComposeError, Envelope, Rendered, build, clean_header
from mailbot.models.base import utcnow
from mailbot.models.jobs import (
    DigestRun,
    DigestState,
    Frequency,
    Job,
    JobStatus,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionKind,
    SubscriptionStatus,
)
from mailbot.services import Poke
from mailbot.services.delivery import queue_message, queue_wires
from mailbot.templating import TEMPLATES_DIR, environment

GROUPS = (("remote", "Remote"), ("hybrid", "Hybrid"), ("onsite", "On-site"))


class Superseded(Exception):
    """Another worker finished this run first; roll our copy back."""


def job_view(job: Job) -> dict[str, Any]:
    """What a template needs to show one posting."""
    salary = ""
    if job.salary_min or job.salary_max:
        low, high = job.salary_min or job.salary_max, job.salary_max or job.salary_min
        unit = "/hour" if job.salary_period == "hour" else "/year"
        salary = (f"${low:,}" if low == high else f"${low:,}-${high:,}") + unit
    # Only web and mailto links become clickable (importers refuse other schemes;
    # this also covers rows written some other way).
    url = job.apply_url if job.apply_url.lower().startswith(("https://", "http://")) else ""
    apply = url or (f"mailto:{job.apply_email}" if job.apply_email else "")
    return {
        "id": job.id, "reference": job.reference, "title": job.title, "employer": job.employer,
        "location": job.location, "work_mode": job.work_mode, "credentials": list(job.credentials or []),
        "specialty": job.specialty, "experience": job.experience, "salary": salary, "apply": apply,
        "apply_label": job.apply_url or job.apply_email, "posted": job.posted_at.date().isoformat() if job.posted_at else "",
        "expires": job.expires_at.date().isoformat() if job.expires_at else "",
    }


_CARD_CSS = (TEMPLATES_DIR / "email" / "job-digest" / "card.css").read_text(encoding="utf-8")


class CardCache:
    """Rendered job cards, keyed by (id, updated_at): every change to a
    posting bumps ``updated_at`` (see ``board``), so an edit re-renders."""

    def __init__(self, maxsize: int = 20_000) -> None:
        self.maxsize = maxsize
        self._cards: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def card(self, job: Job) -> dict[str, Any]:
        key = (job.id, job.updated_at)
        # Read without the lock (a dict read is atomic): a digest looks up ~50
        # cards, and the lock and LRU bookkeeping cost more than the lookup.
        # Eviction is oldest-first; the maximum is four times the open jobs.
        found = self._cards.get(key)
        if found is not None:
            return found
        view = job_view(job)
        env = environment()
        view["text"] = env.get_template("email/job-digest/job.txt").render(job=view).rstrip("\n")
        view["html"] = Markup(css_inline.inline_fragment(
            env.get_template("email/job-digest/job.html").render(job=view), _CARD_CSS))
        with self._lock:
            self._cards[key] = view
            while len(self._cards) > self.maxsize:
                self._cards.popitem(last=False)
        return view


CARDS = CardCache()


@lru_cache(maxsize=1)
def _templates() -> tuple:
    # Loaded once: get_template() would stat the three files for every digest.
    env = environment()
    return tuple(env.get_template(f"email/job-digest/{name}") for name in ("subject.txt", "body.txt", "body.html"))


def render_digest(context: dict[str, Any]) -> Rendered:
    """``templates/email/job-digest/`` with pre-rendered cards (see above)."""
    subject, text, html = _templates()
    return Rendered(subject=clean_header(subject.render(context)), text=text.render(context), html=html.render(context))


def group(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cards by work mode; each group's cards joined here (a Python join of
    pre-rendered cards costs microseconds, a template loop over 50 of them
    most of a digest's rendering time)."""
    groups = []
    for mode, label in GROUPS:
        cards = [v for v in views if v["work_mode"] == mode]
        if cards:
            groups.append({"label": label, "jobs": cards, "count": len(cards),
                           "text": "\n\n".join(c["text"] for c in cards),
                           "html": Markup("\n".join(c["html"] for c in cards))})
    return groups


def list_headers(settings: Settings, subscriber_id: int, subscription_id: int | None, list_id: str,
                 kind: str | None = None, token: str | None = None) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers: an HTTPS one-click link and a mailto
    (for one subscription, or with ``kind`` every subscription of that kind);
    ``token``: the unsubscribe token for exactly that, when the caller has it."""
    token = token or links.unsubscribe_token(settings, subscriber_id, subscription_id, kind)
    url = links.unsubscribe_url_of(settings, token)
    mailto = f"mailto:{settings.service_address(settings.service.jobs_address)}?subject={quote('UNSUBSCRIBE ' + token)}"
    return {
        "List-Unsubscribe": f"<{url}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{settings.service.name} {list_id} <{list_id}.{settings.service.domain}>",
        "Auto-Submitted": "auto-generated",
        "Precedence": "bulk",
    }


def section_view(settings: Settings, subscriber: Subscriber, sub: Subscription, views: list[dict[str, Any]],
                 total: int, since: datetime | None, also: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One subscription's part of a digest; ``views`` are cards from
    :data:`CARDS`, ``also`` the matching jobs an earlier section listed."""
    also_text = ", ".join(f"{v['title']} ({v['reference']})" for v in also or [])
    return {
        "subscription_id": sub.id, "summary": sub.summary, "reference": sub.reference, "frequency": sub.frequency,
        "count": len(views), "total": total, "groups": group(views), "ids": [v["id"] for v in views],
        "also": also_text, "also_ids": [v["id"] for v in also or []],
        "since": since.strftime("%Y-%m-%d %H:%M UTC") if since else "",
        "cancel_url": links.unsubscribe_url(settings, subscriber.id, sub.id),
    }


def digest_context(settings: Settings, subscriber: Subscriber, sections: list[dict[str, Any]],
                   frequency: str, unsubscribe_url: str | None = None) -> dict[str, Any]:
    """The template context of one digest email: its sections (see
    :func:`section_view`), in subscription order.  ``unsubscribe_url``: the
    link that leaves every job digest, when the caller signed it already."""
    count = sum(section["count"] for section in sections)
    headline = sections[0]["summary"] if len(sections) == 1 else f"{len(sections)} of your job searches"
    return {
        "service_name": settings.service.name, "frequency": frequency, "sections": sections, "count": count,
        "headline": headline, "manage_url": links.manage_url(settings, subscriber.id),
        "unsubscribe_url": unsubscribe_url or links.unsubscribe_url(settings, subscriber.id, kind=SubscriptionKind.JOBS),
        "jobs_address": settings.service_address(settings.service.jobs_address),
    }


def compose_digest(settings: Settings, subscriber: Subscriber, sections: list[dict[str, Any]],
                   frequency: str) -> EmailMessage:
    rendered = render_digest(digest_context(settings, subscriber, sections, frequency))
    return build(rendered, _envelope(settings, subscriber), domain=settings.service.domain, kind="digest")


def compose_digest_wire(settings: Settings, subscriber: Subscriber, sections: list[dict[str, Any]],
                        frequency: str) -> Wire:
    """The digest as wire bytes for storing and sending, by the bulk
    assembler (``digest_wire``): the email :func:`compose_digest` builds,
    its header bytes written once per process where they never change."""
    # One signature for the body's and the header's unsubscribe link (they are the same).
    token = links.unsubscribe_token(settings, subscriber.id, None, SubscriptionKind.JOBS)
    rendered = render_digest(digest_context(settings, subscriber, sections, frequency,
                                            unsubscribe_url=links.unsubscribe_url_of(settings, token)))
    headers = list_headers(settings, subscriber.id, None, "jobs", kind=SubscriptionKind.JOBS, token=token)
    unsubscribe = headers.pop("List-Unsubscribe")
    return digest_wire(rendered, to=subscriber.email, from_addr=settings.service_address(settings.service.jobs_address),
                       from_name=f"{settings.service.name} job board", domain=settings.service.domain,
                       list_unsubscribe=unsubscribe, static=headers)


def _envelope(settings: Settings, subscriber: Subscriber) -> Envelope:
    return Envelope(
        to=subscriber.email, from_addr=settings.service_address(settings.service.jobs_address),
        from_name=f"{settings.service.name} job board", auto_reply=False,
        extra_headers=list_headers(settings, subscriber.id, None, "jobs", kind=SubscriptionKind.JOBS),
    )


# Digests claimed in one scheduler pass share their window (same claim time,
# same previous digest), so the candidate jobs and their index are built once
# per window, not once per subscriber.  The key includes a fingerprint of the
# window's postings (count, newest id, latest edit -- every change to a
# posting bumps ``updated_at``), and an entry lives a minute at most.
INDEX_SECONDS = 60.0
FRESH_SECONDS = 5.0
_indexes: OrderedDict[tuple, tuple[float, JobIndex]] = OrderedDict()
_recent: OrderedDict[tuple, tuple[float, JobIndex]] = OrderedDict()
_indexes_lock = threading.Lock()


def _window(query, start: datetime | None, end: datetime):
    query = query.where(Job.status == JobStatus.OPEN, Job.opened_at <= end)
    return query.where(Job.opened_at > start) if start is not None else query


def index_for(session: Session, start: datetime | None, end: datetime) -> JobIndex:
    url = session.get_bind().url.render_as_string()
    now = time.monotonic()
    with _indexes_lock:
        # Within a few seconds of building it, skip even the fingerprint query:
        # a burst of digests for one window reuses the index outright.
        recent = _recent.get((url, start, end))
        if recent is not None and now - recent[0] < FRESH_SECONDS:
            return recent[1]
    fingerprint = tuple(session.exec(_window(select(func.count(), func.max(Job.id), func.max(Job.updated_at)),
                                             start, end)).one())
    key = (url, start, end, fingerprint)
    with _indexes_lock:
        found = _indexes.get(key)
        if found is not None and now - found[0] < INDEX_SECONDS:
            _recent[(url, start, end)] = (now, found[1])
            return found[1]
    index = JobIndex(candidate_jobs(session, start, end))
    with _indexes_lock:
        _indexes[key] = (now, index)
        _recent[(url, start, end)] = (now, index)
        while len(_indexes) > 16:
            _indexes.popitem(last=False)
        while len(_recent) > 16:
            _recent.popitem(last=False)
    return index


def candidate_jobs(session: Session, start: datetime | None, end: datetime) -> list[Job]:
    """Open, unexpired jobs that opened in ``(start, end]``, newest first."""
    jobs = session.exec(_window(select(Job), start, end).order_by(Job.opened_at.desc(), Job.id.desc())).all()
    return [j for j in jobs if j.expires_at is None or j.expires_at > end]


def _finish(session: Session, run: DigestRun, state: str, reason: str = "", outbound_id: int | None = None,
            item_ids: list | None = None, sections: list | None = None) -> None:
    values = dict(state=state, reason=reason[:500], outbound_id=outbound_id, item_ids=item_ids or [],
                  finished_at=utcnow())
    if sections is not None:
        values["sections"] = sections
    moved = session.exec(
        update(DigestRun).where(DigestRun.id == run.id, DigestRun.state == DigestState.PENDING).values(**values)
    ).rowcount
    if moved != 1:
        raise Superseded(f"digest run {run.id} was finished by another worker")


FREQUENCIES = {"d": Frequency.DAILY, "w": Frequency.WEEKLY}


def _planned(session: Session, run: DigestRun) -> list[tuple[Subscription, datetime | None]]:
    """The run's subscriptions with the start of each one's window.  (A run
    migrated from the one-run-per-subscription schema has no sections: its
    subscriber's job subscriptions of that frequency stand in.)"""
    if run.sections:
        subs = {sub.id: sub for sub in session.exec(
            select(Subscription).where(Subscription.id.in_([s["s"] for s in run.sections]))).all()}
        return [(subs[s["s"]], datetime.fromisoformat(s["since"]) if s.get("since") else None)
                for s in run.sections if s["s"] in subs]
    frequency = FREQUENCIES.get(run.period_key.split(":", 1)[0], Frequency.DAILY)
    subs = session.exec(select(Subscription).where(
        Subscription.subscriber_id == run.subscriber_id, Subscription.kind == SubscriptionKind.JOBS,
        Subscription.frequency == frequency).order_by(Subscription.id)).all()
    return [(sub, sub.last_digest_at or run.window_start) for sub in subs]


def build_sections(settings: Settings, session: Session, run: DigestRun, subscriber: Subscriber,
                   planned: list[tuple[Subscription, datetime | None]]) -> list[dict[str, Any]]:
    """The sections of a run's email (see :func:`sections_for`)."""
    return sections_for(settings, subscriber, [(sub, since, index_for(session, since, run.window_end))
                                               for sub, since in planned])


def sections_for(settings: Settings, subscriber: Subscriber,
                 planned: list[tuple[Subscription, datetime | None, JobIndex]]) -> list[dict[str, Any]]:
    """One section per subscription, in order, each matched against the
    index of its own window.  A job an earlier section listed is not listed
    again: the later section names it under "also matches" (a short line
    instead of a second card).  Empty sections are left out, unless all are
    empty (then the caller skips the digest, or sends it saying so)."""
    listed: set[int] = set()
    sections = []
    for sub, since, index in planned:
        shown, total, also = index.select_new(sub.criteria, settings.jobs.max_jobs_per_digest, listed)
        listed.update(job.id for job in shown)
        sections.append(section_view(settings, subscriber, sub, [CARDS.card(j) for j in shown], total, since,
                                     [CARDS.card(j) for j in also]))
    kept = [section for section in sections if section["count"] or section["also"]]
    return kept or sections


@dataclass
class RunPlan:
    """What one job-digest run comes to: finish it ``state`` (sent or skipped)
    with ``reason``; when sent, ``wire`` is the email and ``advanced`` the
    subscriptions whose ``last_digest_at`` moves to the run's window end."""

    state: str
    reason: str = ""
    wire: Wire | None = None
    item_ids: list[int] = field(default_factory=list)
    record: list[dict[str, Any]] | None = None
    advanced: list[Subscription] = field(default_factory=list)


def plan_run(settings: Settings, session: Session, run: DigestRun, subscriber: Subscriber,
             planned: list[tuple[Subscription, datetime | None]]) -> RunPlan:
    """Decide and build one pending job-digest run (no writes): skipped when
    the subscriber or every subscription stopped, or nothing new matched;
    otherwise the email."""
    if subscriber.status != SubscriberStatus.ACTIVE:
        return RunPlan(DigestState.SKIPPED, reason=f"subscriber {subscriber.status}")
    # Unsubscribes and pauses since the claim are honoured here, in the
    # transaction that would queue the email.
    live = [(sub, since) for sub, since in planned if sub.status == SubscriptionStatus.ACTIVE]
    if not live:
        stopped = ", ".join(f"{sub.reference} {sub.status}" for sub, _ in planned) or "none left"
        return RunPlan(DigestState.SKIPPED, reason=f"subscriptions stopped: {stopped}")
    sections = build_sections(settings, session, run, subscriber, live)
    record = [{"s": sub.id, "since": since.isoformat() if since else None} for sub, since in live]
    by_id = {section["subscription_id"]: section for section in sections}
    for entry in record:
        section = by_id.get(entry["s"])
        entry["jobs"], entry["also"] = (section["ids"], section["also_ids"]) if section else ([], [])
    item_ids = [job_id for section in sections for job_id in section["ids"]]
    advanced = [sub for sub, _ in live]
    if not item_ids and settings.jobs.skip_empty_digests:
        return RunPlan(DigestState.SKIPPED, reason="no new matching jobs", record=record, advanced=advanced)
    frequency = FREQUENCIES.get(run.period_key.split(":", 1)[0], live[0][0].frequency)
    try:
        wire = compose_digest_wire(settings, subscriber, sections, frequency)
    except ComposeError as exc:
        # An address we may not write to must not hold up the batch it is in.
        return RunPlan(DigestState.SKIPPED, reason=f"cannot compose: {exc}", record=record)
    return RunPlan(DigestState.SENT, wire=wire, item_ids=item_ids, record=record, advanced=advanced)


def send_digest(ctx: Context, run_id: int) -> list[Poke]:
    """Build and queue the digest for one claimed run; returns the send poke
    (none when the run was already finished, skipped or superseded).  The
    scheduler sends runs in batches (``mailbot.jobs.digest_batch``); this
    one-run path serves code-update runs, old pokes and the CLI."""
    settings = ctx.settings
    try:
        with ctx.db.session() as session:
            run = session.get(DigestRun, run_id)
            if run is None or run.state != DigestState.PENDING:
                return []
            subscriber = session.get(Subscriber, run.subscriber_id)
            if run.period_key.startswith("codes:"):
                return _send_code_update(ctx, session, run, subscriber)
            plan = plan_run(settings, session, run, subscriber, _planned(session, run))
            for sub in plan.advanced:
                sub.last_digest_at = run.window_end
                session.add(sub)
            if plan.wire is None:
                _finish(session, run, plan.state, reason=plan.reason, sections=plan.record)
                return []
            [outbound_id] = queue_wires(session, [plan.wire], kind="digest")
            _finish(session, run, DigestState.SENT, outbound_id=outbound_id, item_ids=plan.item_ids,
                    sections=plan.record)
            return [Poke("send_outbound", outbound_id)]
    except Superseded:
        return []


def _send_code_update(ctx: Context, session: Session, run: DigestRun, subscriber: Subscriber) -> list[Poke]:
    """Code-update digests stay one per subscription and code-set version."""
    from mailbot.jobs.code_updates import build_update  # (imports this module)

    sub = session.get(Subscription, run.subscription_id)
    if sub.status != SubscriptionStatus.ACTIVE or subscriber.status != SubscriberStatus.ACTIVE:
        _finish(session, run, DigestState.SKIPPED, reason=f"subscription {sub.status}, subscriber {subscriber.status}")
        return []
    message, codes = build_update(ctx.settings, session, run, sub, subscriber)
    if message is None:
        _finish(session, run, DigestState.SKIPPED, reason="no changes in the subscribed codes")
        return []
    outbound = queue_message(session, message, kind="code-updates")
    _finish(session, run, DigestState.SENT, outbound_id=outbound.id, item_ids=codes)
    return [Poke("send_outbound", outbound.id)]
