"""Code-update digests: what changed in a newly imported code-set version,
for the subscribers who asked about those codes.

The code knowledge base stores validity as date intervals (see
``mailbot.models.codes``): a new version effective on day F opens rows on F
and closes replaced or deleted rows on F-1.  So, for version V of a code set:

- added: a row of V opening on F with no row of the same code closing on F-1;
- revised: a row of V opening on F whose code also has a row closing on F-1
  (a new title or billable status; the old title is shown);
- deleted: a row closing on F-1 with no row of the same code opening on F.

A version is announced only when an earlier version of the same code set
exists (the first import of a set is not "changes"), and only to
subscriptions confirmed before it was imported.  Each (subscription,
version) pair is one :class:`DigestRun` with ``period_key =
"codes:<version id>/S-<subscription id>"``, so a version is announced to a
subscription exactly once.  (Unlike job digests these are not grouped per
subscriber: a new code-set version comes a few times a year, and a
subscriber rarely holds more than one UPDATES subscription.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import true
from sqlmodel import Session, select

from mailbot.config import Settings
from mailbot.jobs import links
from mailbot.jobs.digest import list_headers
from mailbot.mail.compose import Envelope, build, render
from mailbot.models.base import utcnow
from mailbot.models.codes import CodeEntry, CodeSetVersion
from mailbot.models.jobs import (
    DigestRun,
    DigestState,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionKind,
    SubscriptionStatus,
)

# Code sets whose versions carry code changes worth announcing.
ANNOUNCED_KINDS = {"icd10cm": "ICD-10-CM", "hcpcs": "HCPCS Level II", "cpt": "CPT"}
MAX_ITEMS = 200   # per email; the rest is counted, not listed


@dataclass
class Change:
    code: str
    system: str
    change: str          # added | revised | deleted
    title: str
    previous: str = ""


def period_key(version_id: int, subscription_id: int) -> str:
    """One run per subscription and version (runs are unique per subscriber
    and period, and a subscriber may hold several UPDATES subscriptions)."""
    return f"codes:{version_id}/S-{subscription_id}"


def version_of(key: str) -> int:
    return int(key.split(":", 1)[1].split("/", 1)[0])


def has_predecessor(session: Session, version: CodeSetVersion) -> bool:
    return session.exec(
        select(CodeSetVersion.id).where(CodeSetVersion.kind == version.kind, CodeSetVersion.id != version.id,
                                        CodeSetVersion.imported_at <= version.imported_at)
        .where((CodeSetVersion.effective_from < version.effective_from) if version.effective_from else true())
    ).first() is not None


def changes_for_version(session: Session, version_id: int) -> list[Change]:
    """Added, revised and deleted codes of one version (empty for a first import)."""
    version = session.get(CodeSetVersion, version_id)
    if version is None or version.kind not in ANNOUNCED_KINDS or version.effective_from is None:
        return []
    if not has_predecessor(session, version):
        return []
    start = version.effective_from
    closed_on = start - timedelta(days=1)
    opened = session.exec(select(CodeEntry).where(CodeEntry.version_id == version_id,
                                                  CodeEntry.valid_from == start)).all()
    closed = session.exec(select(CodeEntry).where(CodeEntry.system == version.kind,
                                                  CodeEntry.valid_to == closed_on)).all()
    closed_by_code = {row.code: row for row in closed}
    opened_codes = {row.code for row in opened}
    changes = []
    for row in opened:
        old = closed_by_code.get(row.code)
        if old is None:
            changes.append(Change(row.code, row.system, "added", row.title))
        else:
            previous = old.title if old.title != row.title else (
                f"{'billable' if old.billable else 'header (not billable)'} until {closed_on.isoformat()}")
            changes.append(Change(row.code, row.system, "revised", row.title, previous))
    for row in closed:
        if row.code not in opened_codes:
            changes.append(Change(row.code, row.system, "deleted", row.title))
    return sorted(changes, key=lambda c: (c.change, c.code))


def in_scope(code: str, system: str, criteria: dict[str, Any]) -> bool:
    """Is ``code`` inside the subscriber's ranges/prefixes/systems?"""
    systems = criteria.get("systems") or []
    if systems and system not in systems:
        return False
    ranges, prefixes = criteria.get("ranges") or [], criteria.get("prefixes") or []
    if not ranges and not prefixes:
        return True
    bare = code.replace(".", "").upper()
    if any(bare.startswith(p) for p in prefixes):
        return True
    return any(bare >= lo and bare[:len(hi)] <= hi for lo, hi in ranges)


def claim_runs(session: Session, version_id: int | None = None, now: datetime | None = None) -> list[int]:
    """Create the pending runs for a version (or every announceable version);
    returns their ids.  Safe to repeat: existing runs are not recreated."""
    now = now or utcnow()
    query = select(CodeSetVersion).where(CodeSetVersion.kind.in_(list(ANNOUNCED_KINDS)))
    if version_id is not None:
        query = query.where(CodeSetVersion.id == version_id)
    run_ids = []
    for version in session.exec(query).all():
        if not has_predecessor(session, version):
            continue
        if version.effective_to is not None and version.effective_to < now.date():
            continue  # a past release (e.g. the ICD-10-CM history years) is not news
        subs = session.exec(
            select(Subscription.id, Subscription.subscriber_id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .outerjoin(DigestRun, (DigestRun.subscription_id == Subscription.id)
                       & DigestRun.period_key.startswith(f"codes:{version.id}/", autoescape=True))
            .where(Subscription.kind == SubscriptionKind.UPDATES, Subscription.status == SubscriptionStatus.ACTIVE,
                   Subscriber.status == SubscriberStatus.ACTIVE, Subscription.confirmed_at.is_not(None),
                   Subscription.confirmed_at < version.imported_at, DigestRun.id.is_(None))
        ).all()
        for sub_id, subscriber_id in subs:
            run = DigestRun(subscriber_id=subscriber_id, subscription_id=sub_id,
                            period_key=period_key(version.id, sub_id), state=DigestState.PENDING, window_end=now)
            session.add(run)
            session.flush()
            run_ids.append(run.id)
    return run_ids


def compose(settings: Settings, session: Session, subscriber: Subscriber, sub: Subscription,
            version: CodeSetVersion, changes: list[Change]) -> EmailMessage:
    labels = {"added": "Added", "revised": "Revised", "deleted": "Deleted"}
    listed = changes[:MAX_ITEMS]
    sections = [{"label": label, "codes": [{"code": c.code, "title": c.title, "previous": c.previous}
                                           for c in listed if c.change == key]}
                for key, label in labels.items() if any(c.change == key for c in listed)]
    context = {
        "service_name": settings.service.name, "system_label": ANNOUNCED_KINDS.get(version.kind, version.kind),
        "version": version.version, "effective": version.effective_from.isoformat() if version.effective_from else "",
        "scope": sub.summary.removeprefix("code-set changes for ") or "all codes", "reference": sub.reference,
        "total": len(changes), "sections": sections, "more": max(0, len(changes) - len(listed)),
        "source": version.source, "checksum": version.checksum[:12],
        "manage_url": links.manage_url(settings, subscriber.id),
        "unsubscribe_url": links.unsubscribe_url(settings, subscriber.id, sub.id),
    }
    envelope = Envelope(
        to=subscriber.email, from_addr=settings.service_address(settings.service.jobs_address),
        from_name=f"{settings.service.name} code updates", auto_reply=False,
        extra_headers=list_headers(settings, subscriber.id, sub.id, "code-updates"),
    )
    return build(render("code-updates", context), envelope, domain=settings.service.domain, kind="code-updates")


def build_update(settings: Settings, session: Session, run: DigestRun, sub: Subscription,
                 subscriber: Subscriber) -> tuple[EmailMessage | None, list[str]]:
    """The email for one code-update run, or ``None`` when nothing in the
    subscriber's scope changed; also the codes listed."""
    version_id = version_of(run.period_key)
    version = session.get(CodeSetVersion, version_id)
    changes = [c for c in changes_for_version(session, version_id) if in_scope(c.code, c.system, sub.criteria)]
    if version is None or not changes:
        return None, []
    return compose(settings, session, subscriber, sub, version, changes), [c.code for c in changes[:MAX_ITEMS]]
